"""End to end over real sockets: a PageServer on 127.0.0.1 and the Python collector."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
import websockets
import xxhash
from websockets.asyncio.server import serve

from bridge.aio.client import connect
from bridge.core import DEFAULT_PAGE_SIZE, SUBPROTOCOL, PagerProtocol
from bridge.core import messages as m
from bridge.errors import (
    CancelledStreamError,
    ErrorCode,
    FileChangedError,
    IntegrityError,
    PagebridgeError,
    StreamError,
)
from bridge.sources.base import BytesPager, Pager, PagingResult
from bridge.sources.files import FilePager

PAGE = DEFAULT_PAGE_SIZE


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-per-page bytes (a misplaced page would show)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


SIZES = {"empty": 0, "one-byte": 1, "exact-multiple": 3 * PAGE, "remainder": 3 * PAGE + 17}


@pytest.mark.parametrize("window", [1, 4, 64])
@pytest.mark.parametrize("name", list(SIZES))
async def test_files_arrive_identical(root: Path, start_server, window: int, name: str) -> None:
    """Empty, one-byte, exact-multiple and remainder files arrive identical at windows 1, 4, 64."""
    data = pattern(SIZES[name])
    (root / "f.bin").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("f.bin", window=window) == data


@pytest.mark.parametrize("window", [1, 4, 64])
async def test_hundred_mib_file_arrives_identical(root: Path, start_server, window: int) -> None:
    """A 100 MiB file arrives byte-identical (sha256) at windows 1, 4 and 64."""
    data = pattern(100 * 2**20, seed=window)
    (root / "big.bin").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        got = await session.get_all_pages("big.bin", window=window)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def test_adaptive_window_and_sha256(root: Path, start_server) -> None:
    """The default (adaptive) window delivers a file and the server's sha256 is verified."""
    data = pattern(5 * PAGE + 3)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("f", sha256=True) as stream:
            got = b"".join([p.data async for p in stream])
        assert got == data
        assert stream.sha256 == hashlib.sha256(data).digest()
        assert stream.end is not None and stream.end.digest == xxhash.xxh3_128_digest(data)


async def test_offset_and_length_are_exact(root: Path, start_server) -> None:
    """Random access returns exactly [offset, offset+length), clipped at the end of the file."""
    data = pattern(2 * PAGE + 1000)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        for offset, length in [(0, 1), (5, 10), (PAGE - 1, 2), (PAGE, PAGE), (len(data) - 3, 100),
                               (len(data), None), (12345, None)]:
            got = await session.get_all_pages("f", offset=offset, length=length, window=2)
            end = len(data) if length is None else offset + length
            assert got == data[offset:end], (offset, length)
        with pytest.raises(StreamError) as info:
            await session.get_all_pages("f", offset=len(data) + 1)
        assert info.value.code is ErrorCode.BAD_REQUEST


async def test_pages_carry_offsets(root: Path, start_server) -> None:
    """Each page's offset is where its data lies in the file."""
    data = pattern(3 * 1000 + 1)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        async with session.pages("f", offset=7, page_size=1000, window=2) as stream:
            pages = [p async for p in stream]
    assert [(p.offset, len(p.data)) for p in pages] == [(7, 1000), (1007, 1000), (2007, 994)]
    assert all(data[p.offset:p.offset + len(p.data)] == p.data for p in pages)


async def test_two_streams_interleave_on_one_connection(root: Path, start_server) -> None:
    """Two pagings run at once on one connection and both complete intact."""
    a, b = pattern(20 * 1024, 1), pattern(20 * 1024, 2)
    (root / "a").write_bytes(a)
    (root / "b").write_bytes(b)
    server = await start_server(root)
    order: list[str] = []
    async with connect(server.ws_url) as session:
        async def collect(name: str) -> bytes:
            out = bytearray()
            async with session.pages(name, page_size=1024, window=1) as stream:
                async for page in stream:
                    order.append(name)
                    out += page.data
                    await asyncio.sleep(0)
            return bytes(out)

        got_a, got_b = await asyncio.gather(collect("a"), collect("b"))
        assert len(server.connections) == 1  # both streams shared this one connection
    assert (got_a, got_b) == (a, b)
    # Interleaved: each stream had pages taken before the other one finished.
    assert order.index("b") < len(order) - order[::-1].index("a") - 1
    assert order.index("a") < len(order) - order[::-1].index("b") - 1
    # Interleaved: neither stream finished before the other started.
    assert order.index("b") < len(order) - order[::-1].index("a") - 1


class CountingPager(Pager):
    """A custom source: numbered lines, generated on demand."""

    def __init__(self, lines: int, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lines = lines
        self.next_line = 0
        self.closed = 0

    async def next_page(self, size: int) -> bytes | None:
        if self.next_line >= self.lines:
            return None
        page = b"".join(f"line {i}\n".encode()
                        for i in range(self.next_line, min(self.lines, self.next_line + 10)))
        self.next_line = min(self.lines, self.next_line + 10)
        return page

    def close(self) -> None:
        self.closed += 1


async def test_custom_pager_subclass(root: Path, start_server) -> None:
    """A mounted Pager subclass is paged; its callback gets args/kwargs once, and it is closed once."""
    calls: list[tuple] = []
    pagers: list[CountingPager] = []

    def factory(request: m.Open) -> Pager:
        pager = CountingPager(25, lambda result, *a, **kw: calls.append((result, a, kw)), "x", k=1)
        pagers.append(pager)
        return pager

    server = await start_server(root)
    server.mount("numbers", factory)
    async with connect(server.ws_url) as session:
        assert [e.name for e in await session.list()] == ["numbers"]
        got = await session.get_all_pages("numbers")
    assert got == b"".join(f"line {i}\n".encode() for i in range(25))
    await asyncio.wait_for(pagers[0].wait(), 5)
    assert len(calls) == 1
    result, args, kwargs = calls[0]
    assert result == PagingResult(True, 3, len(got), None)
    assert (args, kwargs) == (("x",), {"k": 1})
    assert pagers[0].closed == 1


async def test_completion_reports_failure_on_disconnect(root: Path, start_server) -> None:
    """A collector that disconnects mid-stream: callback fires once with a failure, file closed."""
    (root / "f").write_bytes(pattern(50 * 1024))
    calls: list[PagingResult] = []
    pagers: list[FilePager] = []

    def factory(request: m.Open) -> Pager:
        pager = FilePager(root / "f", callback=lambda result, tag: calls.append((result, tag)),
                          tag="t")
        pagers.append(pager)
        return pager

    server = await start_server(root)
    server.mount("watched", factory)
    session = await connect(server.ws_url)
    stream = session.pages("watched", page_size=1024, window=1)
    first = await stream.__anext__()
    assert first.offset == 0
    session.ws.transport.abort()  # the collector dies: no close handshake
    with pytest.raises(PagebridgeError):
        await asyncio.wait_for(pagers[0].wait(), 5)
    assert len(calls) == 1
    result, tag = calls[0]
    assert (result.ok, tag) == (False, "t")
    assert result.error is not None and result.error.code is ErrorCode.CANCELLED
    assert pagers[0].fd is None  # the file handle was released
    await asyncio.sleep(0.05)
    assert len(calls) == 1  # exactly once


async def test_cancel_stops_the_stream_and_frees_the_file(root: Path, start_server) -> None:
    """Leaving a stream early cancels it: the server closes the file and reports a cancel."""
    (root / "f").write_bytes(pattern(100 * 1024))
    pagers: list[FilePager] = []

    def factory(request: m.Open) -> Pager:
        pagers.append(FilePager(root / "f", request.offset, request.length))
        return pagers[-1]

    server = await start_server(root)
    server.mount("f2", factory)
    async with connect(server.ws_url) as session:
        async with session.pages("f2", page_size=1024, window=1) as stream:
            await stream.__anext__()
        with pytest.raises(CancelledStreamError):
            await asyncio.wait_for(pagers[0].wait(), 5)
        assert pagers[0].fd is None
        assert pagers[0].pages_sent < 5  # it stopped: 100 pages were available
        # The connection lives on for other streams.
        assert await session.get_all_pages("f2", length=10) == pattern(10)


async def test_errors_end_one_stream_not_the_connection(root: Path, start_server) -> None:
    """not_found ends its stream; the same connection then completes another transfer."""
    (root / "ok").write_bytes(b"fine")
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        with pytest.raises(StreamError) as info:
            await session.get_all_pages("missing")
        assert info.value.code is ErrorCode.NOT_FOUND
        assert "missing does not exist" in info.value.message
        assert await session.get_all_pages("ok") == b"fine"


async def test_file_changed_between_resume_halves_is_refused(root: Path, start_server, tmp_path: Path) -> None:
    """A resume whose file changed on the server raises FileChangedError and splices nothing."""
    path = root / "f"
    path.write_bytes(pattern(10 * 1024, 1))
    server = await start_server(root)
    dest = tmp_path / "out"
    async with connect(server.ws_url) as session:
        stream = session.pages("f", length=4096)
        opened = await stream.wait_opened()
        first_half = b"".join([p.data async for p in stream])
        # Leave a partial download the way an interrupted download() does.
        (tmp_path / "out.part").write_bytes(first_half)
        (tmp_path / "out.part.etag").write_text(opened.etag)
        os.utime(path, ns=(1, 1))  # the file changes (same size, new mtime)
        path.write_bytes(pattern(10 * 1024, 2))
        with pytest.raises(FileChangedError) as info:
            await session.download("f", dest)
        assert "has changed" in info.value.message
    assert not dest.exists()
    assert (tmp_path / "out.part").read_bytes() == first_half  # kept, not spliced


async def test_download_resumes_a_partial_file(root: Path, start_server, tmp_path: Path) -> None:
    """download(resume=True) continues a .part file from its length and verifies the result."""
    data = pattern(3 * PAGE + 5)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    dest = tmp_path / "copy"
    async with connect(server.ws_url) as session:
        etag = (await session.pages("f", length=1).wait_opened()).etag
        (tmp_path / "copy.part").write_bytes(data[:PAGE + 3])
        (tmp_path / "copy.part.etag").write_text(etag)
        result = await session.download("f", dest)
    assert dest.read_bytes() == data
    assert (result.resumed_from, result.received, result.bytes) == (PAGE + 3, len(data) - PAGE - 3, len(data))
    assert not (tmp_path / "copy.part").exists()


async def test_corrupted_page_from_a_server_is_detected(tmp_path: Path) -> None:
    """The client raises IntegrityError when a (hostile) server flips a byte in a page."""
    async def hostile(ws) -> None:
        pager = PagerProtocol()
        async for frame in ws:
            for event in pager.receive(frame):
                if type(event).__name__ == "OpenRequested":
                    sid = event.request.stream
                    pager.accept_open(sid, path="x", size=4, length=4, mtime=None, etag=None)
                    pager.send_page(sid, b"good")
            for out in pager.data_to_send():
                body = m.decode(out)
                if isinstance(body, m.Page):
                    out = m.Page(body.stream, body.seq, body.offset, b"evil", body.xxh).encode()
                await ws.send(out)

    async with serve(hostile, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as srv:
        port = srv.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/ws") as session:
            with pytest.raises(IntegrityError) as info:
                await session.get_all_pages("x")
    assert "failed its checksum" in info.value.message


async def test_wrong_token_is_refused(root: Path, start_server) -> None:
    """A server with a token refuses a collector with the wrong one, with a clear error."""
    server = await start_server(root, token="right")
    with pytest.raises(PagebridgeError) as info:
        async with connect(server.ws_url, token="wrong") as session:
            await session.list()
    assert info.value.code is ErrorCode.UNAUTHORIZED
    async with connect(server.ws_url, token="right") as session:
        assert await session.list() == []


async def test_foreign_origin_is_refused(root: Path, start_server) -> None:
    """A browser handshake from another origin gets HTTP 403; the same origin is accepted."""
    server = await start_server(root)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(server.ws_url, origin="http://evil.example",
                                      subprotocols=[SUBPROTOCOL]):
            pass
    assert info.value.response.status_code == 403
    same = f"http://127.0.0.1:{server.port}"
    async with websockets.connect(server.ws_url, origin=same, subprotocols=[SUBPROTOCOL]) as ws:
        await ws.send(m.Hello().encode())
        assert isinstance(m.decode(await ws.recv()), m.Welcome)


async def test_non_loopback_without_token_is_refused(root: Path) -> None:
    """Binding a non-loopback address without a token fails unless insecure is set."""
    from bridge.aio.server import PageServer

    with pytest.raises(ValueError, match="without a token"):
        PageServer(root, host="0.0.0.0")
    PageServer(root, host="0.0.0.0", insecure=True)
    PageServer(root, host="0.0.0.0", token="t")


async def test_bytes_pager_is_a_string_pager(root: Path, start_server) -> None:
    """BytesPager pages a bytes object like Twisted's StringPager, and wait() returns its result."""
    pagers: list[BytesPager] = []
    server = await start_server(root)
    server.mount("mem", lambda request: pagers.append(BytesPager(b"m" * 1000)) or pagers[-1])
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("mem", page_size=300) == b"m" * 1000
    result = await asyncio.wait_for(pagers[0].wait(), 5)
    assert (result.ok, result.pages, result.bytes) == (True, 4, 1000)


@pytest.mark.parametrize("max_page_size, bulk_pages", [(None, 4), (512 << 10, 8)])
async def test_bulk_reads_ask_for_large_pages(root: Path, start_server, max_page_size: int | None,
                                             bulk_pages: int) -> None:
    """download() and get_all_pages() ask for 1 MiB pages (at most the server's max_page_size);
    pages() keeps the server's default unless told otherwise."""
    data = os.urandom(4 << 20)
    (root / "f").write_bytes(data)
    server = await start_server(root, **({"max_page_size": max_page_size} if max_page_size else {}))
    async with connect(server.ws_url) as session:
        (connection,) = server.connections
        writer = connection.pump._writer
        frames = writer.frames
        assert await session.get_all_pages("f") == data
        assert writer.frames - frames == bulk_pages + 2  # opened, the pages, end
        frames = writer.frames
        result = await session.download("f", root.parent / "copy", sha256=True)
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert writer.frames - frames == bulk_pages + 2
        frames = writer.frames
        async with session.pages("f") as stream:
            assert sum([len(page.data) async for page in stream]) == len(data)
        assert writer.frames - frames == (4 << 20) // DEFAULT_PAGE_SIZE + 2
        frames = writer.frames
        assert await session.get_all_pages("f", page_size=2 << 20 if max_page_size is None else 128 << 10) == data
        assert writer.frames - frames == (2 if max_page_size is None else 32) + 2
