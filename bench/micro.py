"""In-process measurements behind the speed work: one page's costs, best of several repeats.

    python -m bench.micro

Each line is microseconds per 256 KiB page (the best of 7 repeats, so other
processes on the machine inflate it least): the old and the new page
encoding and decoding, a file read handed to a worker thread against one
read on the event loop (``RWF_NOWAIT``), the kernel's copy into a buffer
aligned to 64 bytes against one at 16 mod 32, and a frame written as header
+ data joined against the header written in front of the data.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import tempfile
import timeit
from collections.abc import Callable

import msgpack

from bridge.core import messages as m
from bridge.core.limits import page_check
from bridge.sources.files import page_buffer

PAGE = 256 * 1024


def best(fn: Callable[[], object], number: int = 200) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def codec_lines() -> list[tuple[str, float]]:
    data = os.urandom(PAGE)
    xxh = page_check(data)
    fields = {"t": "page", "stream": 1, "seq": 5, "offset": 1 << 30, "data": data, "xxh": xxh}
    old_frame = msgpack.packb(fields, use_bin_type=True)
    page = m.Page(1, 5, 1 << 30, data, xxh)
    new_frame = page.encode()
    return [
        ("encode: msgpack map (before)", best(lambda: msgpack.packb(fields, use_bin_type=True))),
        ("encode: header + data (after)", best(page.encode)),
        ("decode: msgpack, data copied (before)", best(lambda: m.decode(memoryview(old_frame)))),
        ("decode: header, data a view (after)", best(lambda: m.decode(new_frame))),
    ]


def read_lines(path: str) -> list[tuple[str, float]]:
    fd = os.open(path, os.O_RDONLY)
    pages = os.fstat(fd).st_size // PAGE
    buffer = bytearray(PAGE + 64)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    aligned_at = -address % 64
    aligned = memoryview(buffer)[aligned_at:aligned_at + PAGE]
    misaligned = memoryview(buffer)[aligned_at + 16:aligned_at + 16 + PAGE - 64]
    counter = iter(range(10**9))

    async def in_thread() -> None:
        for _ in range(200):
            await asyncio.to_thread(os.pread, fd, PAGE, next(counter) % pages * PAGE)

    async def on_loop() -> None:
        for _ in range(200):
            os.preadv(fd, [page_buffer(PAGE)], next(counter) % pages * PAGE, getattr(os, "RWF_NOWAIT", 0))

    def run(coro: Callable[[], object]) -> float:
        return min(timeit.repeat(lambda: asyncio.run(coro()), number=1, repeat=5)) / 200 * 1e6  # type: ignore[arg-type]

    lines = [
        ("file read: thread hand-off per page (before)", run(in_thread)),
        ("file read: RWF_NOWAIT on the loop (after)", run(on_loop)),
        # Across the file, so the source is not in the CPU's caches (as when paging a file).
        ("kernel copy into 64-byte aligned buffer",
         best(lambda: os.preadv(fd, [aligned], next(counter) % pages * PAGE))),
        ("kernel copy into buffer at 16 mod 32",
         best(lambda: os.preadv(fd, [misaligned], next(counter) % pages * PAGE))),
    ]
    os.close(fd)
    return lines


def frame_lines() -> list[tuple[str, float]]:
    data = page_buffer(PAGE)
    header = m.page_header(1, 5, 1 << 30, b"x" * 8, PAGE)
    room = bytearray(128 + PAGE)

    def headroom() -> memoryview:
        room[128 - len(header):128] = header
        return memoryview(room)[128 - len(header):]

    return [
        ("frame: header + data joined (before)", best(lambda: header + data)),
        ("frame: header written in front of data (now)", best(headroom)),
    ]


def receive_lines() -> list[tuple[str, float]]:
    """websockets' client parsing 64 frames of a page each, fed 1 MiB at a time, per frame.

    Before: its own reader (the data appended to its buffer, each payload
    sliced out, the message joined, as ``recv()`` returns it).  Now: the
    ChunkReader, the data put in place (as ``recv_into`` would), each
    payload a view.  Both loops copy each byte once to stand for the
    socket's read (a slice for ``recv``, a copy into the buffer for
    ``recv_into``).
    """
    from websockets.client import ClientProtocol
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State
    from websockets.uri import parse_uri

    from bridge.aio.receive import ChunkReader

    frames = 64
    wire = b"".join(Frame(Opcode.BINARY, os.urandom(PAGE)).serialize(mask=False) for _ in range(frames))
    whole = memoryview(wire)

    def client(reader: ChunkReader | None) -> ClientProtocol:
        protocol = ClientProtocol(parse_uri("ws://x/ws"), state=State.OPEN)
        if reader is not None:
            protocol.reader = reader
        protocol.parser = protocol.parse()
        next(protocol.parser)
        return protocol

    def stock() -> None:
        protocol = client(None)
        for i in range(0, len(wire), 1 << 20):
            protocol.receive_data(wire[i:i + (1 << 20)])
            for event in protocol.events_received():
                assert isinstance(event, Frame)
                b"".join([event.data])

    reader = ChunkReader()  # one connection's, grown to its steady size by the first run

    def in_place() -> None:
        protocol = client(reader)
        pos = 0
        while pos < len(wire):
            space = reader.free_space()
            n = min(len(space), 1 << 20, len(wire) - pos)
            space[:n] = whole[pos:pos + n]  # stands for recv_into
            del space
            reader.filled(n)
            pos += n
            protocol.receive_data(b"")
            for event in protocol.events_received():
                assert isinstance(event, Frame)

    def per_frame(fn: Callable[[], object]) -> float:
        return min(timeit.repeat(fn, number=5, repeat=7)) / 5 / frames * 1e6

    return [
        ("receive: websockets' reader + join (before)", per_frame(stock)),
        ("receive: ChunkReader, payload a view (now)", per_frame(in_place)),
    ]


def main() -> None:
    with tempfile.NamedTemporaryFile(prefix="pagebridge-micro-") as f:
        for _ in range(256):  # larger than the CPU's caches
            f.write(os.urandom(1 << 20))
        f.flush()
        lines = codec_lines() + read_lines(f.name) + frame_lines() + receive_lines()
    for name, us in lines:
        print(f"{name:52} {us:8.1f} us/page")


if __name__ == "__main__":
    main()
