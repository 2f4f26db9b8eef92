"""The server's send path (bridge/aio/wire.py): its own frame headers, pages written in place."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

from bridge.aio.client import connect
from bridge.aio.wire import SMALL_FRAME, FrameWriter, frame_header, pieces_of


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20, (1 << 32) + 5])
def test_frame_header_is_websockets_own(length: int) -> None:
    """The header is byte for byte what websockets writes for an unmasked binary frame."""
    ours = frame_header(length)
    if length <= 1 << 20:
        theirs = Frame(Opcode.BINARY, b"x" * length).serialize(mask=False)
        assert theirs == ours + b"x" * length
    else:  # too large to build: the 64-bit length form
        assert ours == bytes((0x82, 127)) + length.to_bytes(8, "big")


def test_small_frames_are_joined_and_large_ones_written_in_place() -> None:
    page = memoryview(bytearray(os.urandom(SMALL_FRAME + 1)))
    frames: list[bytes | memoryview] = [b"opened", page, b"end", b"x" * SMALL_FRAME]
    pieces = pieces_of(frames)
    assert len(pieces) == 3 and pieces[1] is page  # the page itself: no copy
    expected = b"".join(Frame(Opcode.BINARY, bytes(f)).serialize(mask=False) for f in frames)
    assert b"".join(bytes(p) for p in pieces) == expected


async def test_a_reader_slower_than_the_socket_gets_every_byte_in_order(root: Path, start_server) -> None:
    """When the socket takes only part of a write, the rest goes through the transport, in order.

    Small socket buffers on both ends, and a collector that stops reading
    for a while with 32 pages of credit: the server's socket fills, and the
    pages that follow are written partly directly and partly through the
    transport's buffer.
    """
    data = os.urandom(24 << 20)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    digest = hashlib.sha256()
    async with connect(server.ws_url) as session:
        session.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
        (connection,) = server.connections
        connection.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 << 10)
        async with session.pages("f", page_size=256 << 10, window=32) as stream:
            async for page in stream:
                digest.update(page.data)
                if page.seq % 16 == 0:
                    await asyncio.sleep(0.05)  # the server keeps writing meanwhile
        writer = connection.pump._writer
        assert isinstance(writer, FrameWriter)
        assert writer.frames >= 96 and writer.partial_writes > 0
    assert digest.digest() == hashlib.sha256(data).digest()


async def test_tls_connections_are_written_by_websockets(root: Path, start_server) -> None:
    """Behind TLS the socket carries ciphertext: the writer must stand aside, and pages still arrive."""
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    data = os.urandom(3 << 20)
    (root / "f").write_bytes(data)
    server = await start_server(root, ssl=server_context)
    async with connect(server.ws_url, ssl=client_context) as session:
        assert await session.get_all_pages("f") == data
        (connection,) = server.connections
        assert connection.pump._writer is None


async def test_a_small_file_leaves_in_one_write(root: Path, start_server) -> None:
    """`opened`, the one page and `end` of a small file go out in one system call, in that order."""
    (root / "small").write_bytes(b"hello\n" * 100)
    (root / "two").write_bytes(os.urandom(300 << 10))
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        (connection,) = server.connections
        writer = connection.pump._writer
        assert isinstance(writer, FrameWriter)
        before = writer.writes, writer.frames
        assert await session.get_all_pages("small") == b"hello\n" * 100
        assert (writer.writes - before[0], writer.frames - before[1]) == (1, 3)
        # Two pages: opened with the first, end with the last.
        before = writer.writes, writer.frames
        assert len(await session.get_all_pages("two", page_size=256 << 10)) == 300 << 10
        assert (writer.writes - before[0], writer.frames - before[1]) == (2, 4)


async def test_opened_goes_at_once_for_a_source_whose_first_page_waits(root: Path, start_server) -> None:
    """A source that is not `prompt` (an embedder's, waiting for its data) gets `opened` at once."""
    from bridge.aio.server import PageServer
    from bridge.sources.base import Pager, SourceInfo

    release = asyncio.Event()

    class Slow(Pager):
        async def start(self) -> SourceInfo:
            return SourceInfo(size=5, length=5)

        async def next_page(self, size: int) -> bytes | None:
            if self.pages_sent:
                return None
            await release.wait()
            return b"hello"

    server: PageServer = await start_server(root)
    server.mount("slow", lambda request: Slow())
    async with connect(server.ws_url) as session:
        stream = session.pages("slow")
        try:
            opened = await asyncio.wait_for(stream.wait_opened(), 5)  # before any page exists
        finally:
            release.set()  # (also when that failed: the stream can then end)
        assert opened.size == 5
        assert [bytes(page.data) async for page in stream] == [b"hello"]
