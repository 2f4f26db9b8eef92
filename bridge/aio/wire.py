"""The server's send path: whole frames written to the socket, pages not copied.

websockets' ``send()`` serializes every frame into a new bytes object (the
page's bytes copied into it), awaits its write, and does so frame by frame.
The pager already builds each page's frame payload in place (its header in
room left before the data, :meth:`bridge.core.pager.PagerProtocol.send_page`),
so what is left to add is the WebSocket frame header: :class:`FrameWriter`
writes the headers and payloads of everything the core queued with one
``writev`` on the socket, when the transport has nothing buffered (the usual
case), and hands whatever the socket did not take to the transport, which
keeps the order and the flow control (``drain``).  So a page's bytes are
copied once, by the kernel, and a small stream's ``opened``, page and
``end`` leave in one system call instead of three.

websockets still owns the connection: the handshake, reading, pings and
pongs, closing, and the state checks: frames are written inside its
``send_context()``, which refuses a connection that is not open and waits
for the write buffer to drain.  This relies on websockets' internals
(websockets 17, like :mod:`bridge.aio.receive`), and on a plain TCP
socket: :meth:`FrameWriter.for_connection` returns None (and the pump uses
``ws.send``) for TLS, for a negotiated extension (compression would
transform the payload), for a client (whose frames are masked), and for a
websockets without what this uses.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.protocol import SERVER

#: First header byte of an unfragmented binary frame (FIN, opcode 2): RFC 6455 §5.2.
_FIN_BINARY = 0x82
#: Payloads up to this size are joined with their headers into one piece (a
#: copy cheaper than an extra ``iovec``); larger ones are written in place.
SMALL_FRAME = 16 << 10
#: ``writev`` takes at most IOV_MAX (1024 on Linux) pieces per call.
_MAX_PIECES = 512


def frame_header(length: int) -> bytes:
    """The header of an unmasked, unfragmented binary frame of ``length`` payload bytes."""
    if length < 126:
        return bytes((_FIN_BINARY, length))
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_BINARY, 126, length)
    return struct.pack("!BBQ", _FIN_BINARY, 127, length)


def _size(piece: bytes | bytearray | memoryview) -> int:
    return piece.nbytes if isinstance(piece, memoryview) else len(piece)


def pieces_of(frames: Sequence[bytes | memoryview]) -> list[bytes | bytearray | memoryview]:
    """The wire bytes of ``frames`` (binary messages), small ones joined, large ones as given."""
    pieces: list[bytes | bytearray | memoryview] = []
    small = bytearray()
    for frame in frames:
        size = _size(frame)
        small += frame_header(size)
        if size <= SMALL_FRAME:
            small += frame
        else:
            pieces.append(bytes(small))
            small.clear()
            pieces.append(frame)
    if small:
        pieces.append(bytes(small))
    return pieces


class FrameWriter:
    """Writes a server connection's binary frames straight to its socket (see the module)."""

    def __init__(self, ws: Connection, fd: int) -> None:
        self.ws = ws
        self.fd = fd
        #: Writes, frames written, and writes the socket took only part of (the
        #: rest went through the transport's buffer): for tests and diagnosis.
        self.writes = 0
        self.frames = 0
        self.partial_writes = 0

    @classmethod
    def for_connection(cls, ws: Connection) -> FrameWriter | None:
        """A writer for ``ws``, or None where only ``ws.send`` is right (see the module)."""
        transport = ws.transport
        protocol = ws.protocol
        if (protocol.side is not SERVER or protocol.extensions
                or not hasattr(ws, "send_context") or not hasattr(protocol, "expect_continuation_frame")
                or transport.get_extra_info("ssl_object") is not None
                or transport.get_extra_info("sslcontext") is not None):
            return None
        sock: Any = transport.get_extra_info("socket")
        if sock is None:
            return None
        try:
            fd = sock.fileno()
        except (OSError, ValueError):
            return None
        return cls(ws, fd) if fd >= 0 else None

    async def send(self, frames: Sequence[bytes | memoryview]) -> None:
        """Send ``frames`` (binary messages) in order; returns once the transport drained.

        Raises websockets' ``ConnectionClosed`` when the connection is not
        open, as ``ws.send`` does.
        """
        async with self.ws.send_context():
            self.writes += 1
            self.frames += len(frames)
            self._write(pieces_of(frames))

    def _write(self, pieces: list[bytes | bytearray | memoryview]) -> None:
        transport = self.ws.transport
        sent = 0
        # Straight to the socket only when nothing is buffered ahead of us:
        # the transport writes its buffer first, and order is everything.
        if not transport.get_write_buffer_size() and not transport.is_closing():
            try:
                sent = os.writev(self.fd, pieces[:_MAX_PIECES])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # a broken socket: the transport meets the error below and closes
        if sent < sum(_size(piece) for piece in pieces):
            self.partial_writes += 1
        for piece in pieces:
            size = _size(piece)
            if sent >= size:
                sent -= size
                continue
            # What the socket did not take: the transport buffers it (copying
            # it, or keeping a view of it: the page buffer is never reused).
            transport.write(piece[sent:] if sent else piece)
            sent = 0


__all__ = ["FrameWriter", "frame_header", "pieces_of"]
