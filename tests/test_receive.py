"""The collector's receive path: pages are views of the receive buffers, which never change under them."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from bridge.aio import receive
from bridge.aio.client import Page, connect
from bridge.aio.receive import MAX_CHUNK, MIN_CHUNK, ChunkReader, ViewConnection


async def test_pages_are_views_of_the_receive_buffer_and_stay_intact(root: Path, start_server) -> None:
    """Every page's data views a receive buffer (no copy); pages held to the end keep their bytes.

    Holding every seventh page pins buffers while later pages arrive: the
    reader must take new buffers rather than write over a viewed one.
    """
    data = os.urandom(24 << 20)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    held: list[tuple[int, memoryview, bytes]] = []
    digest = hashlib.sha256()
    async with connect(server.ws_url) as session:
        assert isinstance(session.ws, ViewConnection)
        async with session.pages("f", page_size=256 << 10) as stream:
            async for page in stream:
                assert isinstance(page, Page)
                assert isinstance(page.data, memoryview) and page.data.readonly
                assert isinstance(page.data.obj, bytearray)  # the reader's buffer itself
                digest.update(page.data)
                if page.seq % 7 == 0:
                    held.append((page.offset, page.data, hashlib.sha256(page.data).digest()))
    assert digest.digest() == hashlib.sha256(data).digest()
    assert len(held) > 10
    for offset, view, sha in held:
        assert hashlib.sha256(view).digest() == sha
        assert view == data[offset:offset + len(view)]


async def test_an_idle_connection_holds_one_small_buffer(root: Path, start_server) -> None:
    (root / "small").write_bytes(b"x" * 1000)
    server = await start_server(root)
    (root / "big").write_bytes(os.urandom(16 << 20))
    async with connect(server.ws_url) as session:
        assert await session.get_all_pages("small") == b"x" * 1000
        reader = session.ws._chunks  # type: ignore[attr-defined]
        assert len(reader.chunk) == MIN_CHUNK
        # A burst grows the buffers; quiet again, the connection goes back to one small buffer.
        async with session.pages("big") as stream:
            async for _ in stream:
                pass
        assert len(reader.chunk) == MAX_CHUNK and reader._spares
        for _ in range(receive.QUIET_READS + 1):
            await session.list("")
        assert len(reader.chunk) == MIN_CHUNK and not reader._spares


def drive(reader: ChunkReader, data: bytes, reads: list[int], rng: random.Random) -> list[bytes]:
    """Feed ``data`` in random socket-sized pieces, reading ``reads`` sizes in turn; the results."""
    out: list[bytes] = []
    views: list[memoryview] = []

    def parser():  # type: ignore[no-untyped-def]
        for n in reads:
            got = yield from reader.read_exact(n)
            out.append(bytes(got))
            if isinstance(got, memoryview) and rng.random() < 0.5:
                views.append(got)  # some held, some let go
            if len(views) > 5:
                del views[rng.randrange(len(views))]
        yield

    gen = parser()
    next(gen)
    fed = 0
    while fed < len(data):
        space = reader.free_space()
        # Room for a good read, or exactly the rest of the frame being read.
        assert len(space) >= min(receive.MIN_READ, len(reader.chunk) // 4) > 0 or (
            0 < len(space) == reader.start + reader.want - reader.end)
        n = min(len(space), len(data) - fed, rng.choice([1, 7, 4096, 100_000, 1 << 20, 5 << 20]))
        space[:n] = data[fed:fed + n]
        del space
        reader.filled(n)
        fed += n
        next(gen)
    return out


def test_reads_of_any_size_across_any_socket_reads() -> None:
    """Exact reads of 0 B to beyond MAX_CHUNK, whatever the socket reads' sizes; held views stay intact."""
    rng = random.Random(5)
    for _ in range(5):
        reads = [rng.choice([0, 1, 2, 8, 4096, 4097, 70_000, 300_000, MAX_CHUNK + 3]) for _ in range(60)]
        data = rng.randbytes(sum(reads))
        out = drive(ChunkReader(), data, reads, rng)
        pos = 0
        for n, got in zip(reads, out, strict=True):
            assert got == data[pos:pos + n]
            pos += n


def test_few_bytes_are_moved_between_buffers() -> None:
    """Only the part of a frame read when a buffer fills moves to the next: ~1.5% here."""
    rng = random.Random(7)
    reads = [2, 8, 1 << 20] * 40  # header bytes, length, payload
    data = rng.randbytes(sum(reads))
    reader = ChunkReader()
    out = drive(reader, data, reads, rng)
    assert b"".join(out) == data
    assert 0 < reader.moved < len(data) // 50


def test_a_buffer_is_reused_only_once_no_view_of_it_is_left() -> None:
    reader = ChunkReader()
    frame = 300_000
    data = os.urandom(frame * 60)
    views = []
    gen_reads = []

    # Grow to MAX_CHUNK buffers, holding every view: no buffer may come back.
    seen: list[bytearray] = []
    pos = 0
    while pos < len(data):
        space = reader.free_space()
        if not any(c is reader.chunk for c in seen):
            seen.append(reader.chunk)
        n = min(len(space), len(data) - pos, frame)
        space[:n] = data[pos:pos + n]
        del space
        reader.filled(n)
        pos += n
        while reader.end - reader.start >= frame:
            gen = reader.read_exact(frame)
            try:
                next(gen)
            except StopIteration as done:
                views.append(done.value)
                gen_reads.append(done.value)
    assert b"".join(views) == data[:len(views) * frame]
    big = [c for c in seen if len(c) == MAX_CHUNK]
    assert len(big) >= 3 and len({id(c) for c in big}) == len(big)  # each a new buffer
    # Once the views are gone, the next buffer is a spare one (the current
    # one is still viewed here)...
    current = memoryview(reader.chunk)[:1]
    views.clear()
    gen_reads.clear()
    spares = list(reader._spares)
    assert spares
    reader.start = reader.end = len(reader.chunk) - 1  # as if the buffer had filled up
    reader.free_space()
    assert any(reader.chunk is spare for spare in spares)
    # ... and a buffer nothing views is used again from its start.
    del current
    chunk = reader.chunk
    reader.start = reader.end = len(chunk) - 1
    reader.free_space()
    assert reader.chunk is chunk and reader.start == reader.end == 0


def test_websockets_parses_handshake_and_frames_through_the_reader() -> None:
    """websockets' own client protocol over a ChunkReader: the handshake, then a large binary frame as a view."""
    protocol = ClientProtocol(parse_uri("ws://example/ws"))
    reader = ChunkReader()
    protocol.reader = reader
    protocol.parser = protocol.parse()
    next(protocol.parser)
    request = protocol.connect()
    protocol.send_request(request)
    key = request.headers["Sec-WebSocket-Key"]
    from websockets.server import ServerProtocol

    server = ServerProtocol()
    server.receive_data(b"".join(protocol.data_to_send()))
    (req,) = server.events_received()
    assert req.headers["Sec-WebSocket-Key"] == key
    server.send_response(server.accept(req))
    payload = os.urandom(1 << 20)
    server.send_binary(payload)
    server.send_ping(b"hi")
    wire = b"".join(server.data_to_send())
    pos = 0
    while pos < len(wire):
        space = reader.free_space()
        piece = wire[pos:pos + min(len(space), 100_003)]
        space[:len(piece)] = piece
        del space
        reader.filled(len(piece))
        pos += len(piece)
        protocol.receive_data(b"")
    events = protocol.events_received()
    frames = [e for e in events if isinstance(e, Frame)]
    assert [f.opcode for f in frames] == [Opcode.BINARY, Opcode.PING]
    assert isinstance(frames[0].data, memoryview) and frames[0].data == payload
    assert bytes(frames[1].data) == b"hi"


async def test_file_pages_have_room_for_their_header(tmp_path: Path) -> None:
    """FilePager leaves PAGE_HEADROOM bytes before each page, hands that view over once, and knows no other."""
    from bridge.core.messages import PAGE_HEADROOM
    from bridge.sources.files import FilePager

    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    pager = FilePager(tmp_path / "f")
    await pager.start()
    try:
        first = await pager.next_page(200_000)
        second = await pager.next_page(200_000)
        assert isinstance(first, memoryview) and isinstance(second, memoryview)
        spaced = pager.spaced(second)
        assert spaced is not None and len(spaced) == PAGE_HEADROOM + len(second)
        assert spaced[PAGE_HEADROOM:] == second == data[200_000:]
        assert pager.spaced(second) is None  # handed over once
        assert pager.spaced(memoryview(bytes(first))) is None  # not one of its pages
        assert pager.spaced(first) is not None
    finally:
        pager.close()


async def test_a_websockets_without_the_expected_reader_is_read_as_websockets_does(
        root: Path, start_server, monkeypatch) -> None:
    """If websockets' internals differ, the connection falls back to its own reader: still exact."""
    data = os.urandom(3 << 20)
    (root / "f").write_bytes(data)
    server = await start_server(root)
    monkeypatch.setattr(receive, "can_read_in_place", lambda protocol: False)
    async with connect(server.ws_url) as session:
        assert session.ws._chunks is None  # type: ignore[attr-defined]
        assert await session.get_all_pages("f") == data
