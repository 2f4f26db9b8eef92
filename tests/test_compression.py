"""Compressed pages (zstd, negotiated per stream in open): exact, only when it pays, checked, opt-in.

The wire-level tests speak to a real server through a raw WebSocket and the
real collector core, so they can see each page as it was sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from bridge.aio import server as server_module
from bridge.aio.client import connect
from bridge.core import codecs
from bridge.core import messages as m
from bridge.core.collector import CollectorProtocol, PageReceived, StreamEnded, StreamFailed
from bridge.core.limits import SUBPROTOCOL
from bridge.core.pager import PagerProtocol
from bridge.errors import ErrorCode, IntegrityError

pytestmark = pytest.mark.skipif(not codecs.available(), reason="zstandard is not installed")

LOG = b"".join(b"2026-11-27 05:%02d:%02d INFO request %d served in %d ms from cache\n"
               % (i // 60 % 60, i % 60, i, i % 97) for i in range(40_000))


async def raw_transfer(url: str, path: str, *, compress: bool, page_size: int = 65536,
                       ) -> tuple[m.Opened, list[m.Page], bytes, list[Any]]:
    """Page ``path`` over a raw WebSocket: the opened, the pages as sent, the verified bytes, the events."""
    collector = CollectorProtocol()
    sent: list[m.Page] = []
    received = bytearray()
    events: list[Any] = []
    opened: m.Opened | None = None
    async with ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None,  # type: ignore[list-item]
                          compression=None) as ws:
        sid = None
        while True:
            for frame in collector.data_to_send():
                await ws.send(frame)
            if sid is None and collector.welcome is not None:
                sid = collector.open(path, page_size=page_size, compress=compress)
                continue
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            message = m.decode(frame)
            if isinstance(message, m.Opened):
                opened = message
            elif isinstance(message, m.Page):
                sent.append(message)
            for event in collector.receive(frame, 0.0):
                events.append(event)
                if isinstance(event, PageReceived):
                    received += event.page.data
                    collector.consumed(event.page.stream, event.page.seq, 0.0)
            if any(isinstance(e, (StreamEnded, StreamFailed)) for e in events):
                break
    assert opened is not None
    return opened, sent, bytes(received), events


async def test_compressed_transfer_is_exact_and_smaller(root: Path, start_server) -> None:
    """A text log asked for with compression arrives byte for byte, in pages far smaller than the log."""
    (root / "app.log").write_bytes(LOG)
    server = await start_server(root)
    opened, sent, received, events = await raw_transfer(server.ws_url, "app.log", compress=True)
    assert opened.compression == "zstd"
    assert received == LOG
    assert isinstance(events[-1], StreamEnded)
    assert all(p.size is not None for p in sent)  # every page of a log shrinks
    assert sum(p.size or 0 for p in sent) == len(LOG)
    assert sum(len(p.data) for p in sent) < len(LOG) / 4
    # The same through the Python API.
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("app.log", compress=True) == LOG


async def test_incompressible_pages_go_raw(root: Path, start_server) -> None:
    """Random bytes do not shrink: with compression negotiated, each page is still sent as it is."""
    data = os.urandom(300_000)
    (root / "random.bin").write_bytes(data)
    server = await start_server(root)
    opened, sent, received, _ = await raw_transfer(server.ws_url, "random.bin", compress=True)
    assert opened.compression == "zstd"
    assert received == data
    assert [p.size for p in sent] == [None] * 5
    assert b"".join(bytes(p.data) for p in sent) == data


async def test_mixed_file_compresses_only_the_pages_that_pay(root: Path, start_server) -> None:
    """Text pages go compressed, random pages raw, on one stream, and the whole arrives exact."""
    data = LOG[:65536] + os.urandom(65536) + LOG[:65536]
    (root / "mixed.bin").write_bytes(data)
    server = await start_server(root)
    _, sent, received, _ = await raw_transfer(server.ws_url, "mixed.bin", compress=True)
    assert received == data
    assert [p.size is not None for p in sent] == [True, False, True]


async def test_collector_that_does_not_ask_never_gets_compression(root: Path, start_server) -> None:
    """Without compress in open, opened names no codec and no page carries a compressed size."""
    (root / "app.log").write_bytes(LOG)
    server = await start_server(root)
    opened, sent, received, _ = await raw_transfer(server.ws_url, "app.log", compress=False)
    assert opened.compression is None
    assert received == LOG
    assert all(p.size is None for p in sent) and sum(len(p.data) for p in sent) == len(LOG)


@pytest.mark.parametrize("damage", ["flipped byte", "other content"])
async def test_corrupted_compressed_page_is_detected(root: Path, start_server, monkeypatch, damage: str) -> None:
    """A compressed page damaged on its way fails its stream with integrity; the connection lives on.

    A flipped byte breaks the zstd frame; a well-formed frame of other bytes
    decompresses fine and is caught by the XXH3 of the decompressed bytes.
    """
    (root / "app.log").write_bytes(LOG)
    (root / "ok.txt").write_bytes(b"fine")

    class Damaging(codecs.ZstdCodec):
        def compress(self, data: bytes | memoryview) -> bytes | None:
            if damage == "other content":
                return super().compress(bytes(data).replace(b"INFO", b"WARN"))
            packed = super().compress(data)
            assert packed is not None
            damaged = bytearray(packed)
            damaged[len(damaged) // 2] ^= 0x55  # flipped inside the compressed block
            return bytes(damaged)

    monkeypatch.setattr(server_module.codecs, "make", lambda name: Damaging())
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        with pytest.raises(IntegrityError) as info:
            await session.get_all_pages("app.log", compress=True)
        assert info.value.code is ErrorCode.INTEGRITY
        assert await session.get_all_pages("ok.txt") == b"fine"


def test_core_refuses_garbage_and_unasked_compression() -> None:
    """In memory: undecodable compressed data is an integrity failure; compression nobody asked for is refused."""
    for compress, packed, expected in ((True, b"not zstd at all", ErrorCode.INTEGRITY),
                                       (False, None, ErrorCode.BAD_MESSAGE)):
        pager, collector = PagerProtocol(), CollectorProtocol()
        for frame in collector.data_to_send():
            pager.receive(frame)
        for frame in pager.data_to_send():
            collector.receive(frame, 0.0)
        sid = collector.open("f", window=4, compress=compress)
        for frame in collector.data_to_send():
            pager.receive(frame)
        pager.accept_open(sid, path="f", size=100, length=100, mtime=None, etag=None)
        if compress:
            pager.send_page(sid, b"x" * 100, packed=packed)
        else:
            # A server that compresses anyway: forge the page it would send.
            pager.send_page(sid, b"x" * 100)
        frames = pager.data_to_send()
        if not compress:
            page = m.decode(frames[-1])
            assert isinstance(page, m.Page)
            packed_data = codecs.ZstdCodec().compress(b"x" * 100)
            assert packed_data is not None
            frames[-1] = m.Page(page.stream, page.seq, page.offset, packed_data, page.xxh, 100).encode()
        events = [e for frame in frames for e in collector.receive(frame, 0.0)]
        failed = [e for e in events if isinstance(e, StreamFailed)]
        assert len(failed) == 1 and failed[0].error.code is expected, events
