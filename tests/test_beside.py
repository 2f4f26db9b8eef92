"""Work beside the event loop: consume_beside and the download writer (batches, order, backlog, writev)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from bridge.aio.beside import write_all
from bridge.aio.client import connect
from bridge.core import messages as m


async def test_consume_beside_gets_every_page_in_order_in_a_worker(root: Path, start_server) -> None:
    """consume(pages) runs off the event loop's thread, in batches of about batch_bytes, in order, exact."""
    data = os.urandom(200_000)
    (root / "f.bin").write_bytes(data)
    server = await start_server(root)
    loop_thread = threading.get_ident()
    batches: list[list[int]] = []
    received = bytearray()
    threads: set[int] = set()

    def consume(pages: list[m.Page]) -> None:
        threads.add(threading.get_ident())
        batches.append([p.offset for p in pages])
        for page in pages:
            received.extend(page.data)

    async with connect(server.ws_url) as session:
        async with session.pages("f.bin", page_size=10_000) as stream:
            total = await stream.consume_beside(consume, batch_bytes=30_000)
    assert total == len(data) and bytes(received) == data
    assert loop_thread not in threads and len(threads) == 1
    assert [len(b) for b in batches] == [3] * 6 + [2]
    assert [o for b in batches for o in b] == list(range(0, 200_000, 10_000))


async def test_a_blocked_consumer_stops_the_stream_within_its_backlog(root: Path, start_server) -> None:
    """While consume blocks, at most (backlog + 1) batches are taken (and acknowledged); then all arrives."""
    data = os.urandom(100_000)
    (root / "f.bin").write_bytes(data)
    server = await start_server(root)
    release = threading.Event()
    got = bytearray()

    def consume(pages: list[m.Page]) -> None:
        release.wait(10)
        for page in pages:
            got.extend(page.data)

    async with connect(server.ws_url) as session:
        async with session.pages("f.bin", page_size=1000, window=4) as stream:
            task = asyncio.ensure_future(stream.consume_beside(consume, batch_bytes=3000, backlog=2))
            await asyncio.sleep(0.5)
            core = session.protocol.stream(stream.id)
            assert core is not None
            # 3 batches of 3 pages were taken; the 9th page's put waits for the first batch.
            assert core.consumed_seq == 7
            release.set()
            assert await task == len(data)
    assert bytes(got) == data


async def test_consumer_error_surfaces(root: Path, start_server) -> None:
    """An exception raised by consume is raised by consume_beside."""
    (root / "f.bin").write_bytes(os.urandom(50_000))
    server = await start_server(root)

    def consume(pages: list[m.Page]) -> None:
        raise ValueError("disk full, say")

    async with connect(server.ws_url) as session:
        async with session.pages("f.bin", page_size=1000) as stream:
            with pytest.raises(ValueError, match="disk full"):
                await stream.consume_beside(consume, batch_bytes=5000)


def test_write_all_writes_many_buffers_in_order(tmp_path: Path) -> None:
    """Many buffers of mixed kinds and sizes (empty ones too) land in order."""
    buffers: list[bytes | memoryview] = [os.urandom(i % 300) for i in range(2500)]
    buffers[7] = memoryview(bytearray(b"view" * 1000))
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, buffers)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(bytes(b) for b in buffers)


def test_write_all_writes_at_most_write_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large pages are written WRITE_SIZE at a time (ext4 here pays up to 10x the kernel CPU for
    larger writes), in order, every byte."""
    from bridge.aio import beside

    sizes: list[int] = []
    real_write = os.write

    def recording_write(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(beside.os, "write", recording_write)
    page = os.urandom(4 * beside.WRITE_SIZE + 5)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        beside.write_all(fd, [memoryview(page), b"abc"])
    finally:
        os.close(fd)
    assert sizes == [beside.WRITE_SIZE] * 4 + [5, 3]
    assert path.read_bytes() == page + b"abc"
