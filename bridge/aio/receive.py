"""The collector's receive path: the socket read in place into large buffers, pages left there.

websockets' client copies each received byte three times before the
application sees it: the socket's ``recv`` into a new bytes object, that
appended to its parser's buffer, the frame's payload sliced out of the
buffer, and the payload joined into the message.  :class:`ViewConnection`
(a websockets ``ClientConnection``, given to ``connect`` as
``create_connection``) keeps websockets' parser, handshake, pings and
closing, and changes only where the bytes live:

* :class:`ChunkReader` replaces the parser's buffer: the transport reads
  straight into a large buffer (``recv_into``, through asyncio's
  ``BufferedProtocol``), and a frame's payload is returned as a read-only
  view of it;
* :class:`ViewAssembler` hands a complete binary message over as that view
  (a fragmented or text message is joined as before).

So a page's bytes are copied once, by the kernel, and its ``data`` is a view
of the receive buffer.  The reader and the parser it replaces are websockets'
internals (websockets 17): where they differ, :func:`can_read_in_place` says
so and the connection reads as websockets does.  A buffer is never written again while any view of
it lives (a page the consumer still holds): it is reused only when no view
is left, else a new one is taken.  The buffers start small and double, up
to :data:`MAX_CHUNK`, while pages in flight keep viewing them, and a quiet
connection goes back to one buffer of :data:`MIN_CHUNK` bytes, so an idle
connection holds 64 KiB and a busy one a few MiB.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Generator
from typing import Any, cast

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import Assembler
from websockets.frames import Opcode
from websockets.streams import StreamReader

#: Size of a connection's first receive buffer.
MIN_CHUNK = 64 << 10
#: Largest receive buffer (a frame larger than it gets a buffer of its own
#: size): four 1 MiB pages or sixteen of 256 KiB, with their headers.
MAX_CHUNK = (4 << 20) + (64 << 10)
#: Read into a fresh buffer when less than this is left in the current one
#: (a socket read smaller than a page would mean several parser passes per page).
MIN_READ = 256 << 10
#: Reads up to this size are returned as bytes (frame headers, control
#: frames: websockets parses those; a view would cost more than the copy).
SMALL_READ = 4096
#: Buffers kept for reuse, at most (each still viewed by pages or free);
#: none is kept once the connection is quiet.
SPARES = 4
#: Socket reads smaller than this, leaving nothing unread, QUIET_READS times
#: in a row: the connection is quiet.
IDLE_READ = 4096
QUIET_READS = 8


def _in_use(chunk: bytearray) -> bool:
    """True while a view of ``chunk`` exists (a bytearray refuses to resize then)."""
    last = chunk[-1]
    try:
        del chunk[-1:]
    except BufferError:
        return True
    chunk.append(last)  # back as it was, within the allocation: no copy
    return False


class ChunkReader(StreamReader):
    """websockets' stream reader over large buffers written in place by the socket.

    The unread bytes are always contiguous in the current buffer, from
    ``start`` to ``end``; a read of more than :data:`SMALL_READ` bytes
    returns a read-only view of them.  When the buffer runs out of room the
    unread bytes (part of one frame at most) move to the next buffer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.chunk = bytearray(MIN_CHUNK)
        self.start = 0
        self.end = 0
        #: Bytes from ``start`` that the parser is waiting for (0: none).
        self.want = 0
        #: Bytes copied from one buffer to the next (part of a frame).
        self.moved = 0
        #: Small socket reads in a row (the connection is quiet).
        self.quiet = 0
        self._spares: deque[bytearray] = deque()

    # ------------------------------------------------------------ filling

    def free_space(self) -> memoryview:
        """Where the next socket read goes (``BufferedProtocol.get_buffer``)."""
        size = len(self.chunk)
        if self.quiet >= QUIET_READS and self.start == self.end and size > MIN_CHUNK:
            # Quiet again after a burst: a small buffer, and no spares kept.
            self.chunk, self.start, self.end = bytearray(MIN_CHUNK), 0, 0
            self._spares.clear()
        elif size - self.end < min(MIN_READ, size // 4) or self.start + self.want > size:
            self._next_chunk()
        return memoryview(self.chunk)[self.end:]

    def filled(self, nbytes: int) -> None:
        """``nbytes`` were written at the end (``BufferedProtocol.buffer_updated``)."""
        if self.eof:
            raise EOFError("stream ended")
        self.end += nbytes
        self.quiet = self.quiet + 1 if nbytes < IDLE_READ else 0

    def feed_data(self, data: bytes | bytearray) -> None:
        if self.eof:
            raise EOFError("stream ended")
        size = len(data)
        if size:
            if len(self.chunk) - self.end < size:
                self._next_chunk(size)
            memoryview(self.chunk)[self.end:self.end + size] = data
            self.end += size

    def _next_chunk(self, incoming: int = 0) -> None:
        """Continue at the start of this buffer if nothing views it, else in another one.

        The unread bytes (part of one frame at most) are taken along.  A
        buffer still viewed when it fills up means pages are in flight: the
        next one is twice as large, up to MAX_CHUNK.
        """
        old, start, end = self.chunk, self.start, self.end
        pending = end - start
        need = max(pending + incoming, self.want) + min(MIN_READ, len(old) // 4)
        if need <= len(old) and not _in_use(old):
            old[:pending] = bytes(old[start:end])
            self.moved += pending
            self.start, self.end = 0, pending
            return
        size = max(min(len(old) * 2, MAX_CHUNK), need)
        chunk = None
        if size == MAX_CHUNK:
            for spare in self._spares:
                if not _in_use(spare):
                    self._spares.remove(spare)
                    chunk = spare
                    break
        if chunk is None:
            chunk = bytearray(size)
        chunk[:pending] = memoryview(old)[start:end]
        self.moved += pending
        if len(old) == MAX_CHUNK:
            self._spares.append(old)
            if len(self._spares) > SPARES:
                self._spares.popleft()  # still viewed by pages: it goes with them
        self.chunk, self.start, self.end = chunk, 0, pending

    def feed_eof(self) -> None:
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        self.start = self.end

    # ------------------------------------------------------------ reading

    def read_exact(self, n: int) -> Generator[None, None, Any]:
        assert n >= 0
        while self.end - self.start < n:
            if self.eof:
                raise EOFError(f"stream ends after {self.end - self.start} bytes, expected {n} bytes")
            self.want = n
            yield
        self.want = 0
        start = self.start
        self.start = start + n
        if n <= SMALL_READ:
            return self.chunk[start:start + n]
        return memoryview(self.chunk)[start:start + n].toreadonly()

    def read_line(self, m: int, too_long_exc_type: type[Exception] = RuntimeError,
                  ) -> Generator[None, None, bytearray]:
        p = self.start  # searched up to here
        while True:
            n = self.chunk.find(b"\n", p, self.end) + 1
            if n > 0:
                break
            p = self.end
            if p - self.start > m:
                raise too_long_exc_type(f"read {p - self.start} bytes, expected no more than {m} bytes")
            if self.eof:
                raise EOFError(f"stream ends after {p - self.start} bytes, before end of line")
            yield
        if n - self.start > m:
            raise too_long_exc_type(f"read {n - self.start} bytes, expected no more than {m} bytes")
        line = self.chunk[self.start:n]
        self.start = n
        return line

    def read_to_eof(self, m: int, too_long_exc_type: type[Exception] = RuntimeError,
                    ) -> Generator[None, None, bytearray]:
        while not self.eof:
            if self.end - self.start > m:
                raise too_long_exc_type(f"read {self.end - self.start} bytes, expected no more than "
                                        f"{m} bytes")
            yield
        rest = self.chunk[self.start:self.end]
        self.start = self.end
        return rest

    def at_eof(self) -> Generator[None, None, bool]:
        while True:
            if self.end > self.start:
                return False
            if self.eof:
                return True
            yield


class ViewAssembler(Assembler):
    """websockets' message assembler, handing a whole binary message over without joining it."""

    async def get(self, decode: bool | None = None) -> Any:
        if decode is not None or self.get_in_progress:
            return await super().get(decode)
        self.get_in_progress = True
        try:
            frame = await self.frames.get(not self.closed)
        finally:
            self.get_in_progress = False
        if frame.fin and frame.opcode is Opcode.BINARY:
            self.maybe_resume()
            return frame.data
        self.frames.put_back([frame])
        return await super().get(decode)


class ViewConnection(ClientConnection, asyncio.BufferedProtocol):
    """A websockets client connection whose received bytes stay where the socket put them.

    Use as ``websockets.asyncio.client.connect(..., create_connection=ViewConnection)``.
    ``recv()`` returns a binary message as a read-only ``memoryview``.
    """

    def __init__(self, protocol: Any, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._chunks: ChunkReader | None = None
        self._scratch = bytearray(0)
        if can_read_in_place(protocol):
            # Nothing was received yet: start websockets' parser again over
            # our reader, as the protocol's constructor started it over its own.
            self._chunks = ChunkReader()
            protocol.reader = self._chunks
            protocol.parser = protocol.parse()
            next(protocol.parser)
        else:  # another websockets: its own reader, fed as data_received would be
            self._scratch = bytearray(MIN_READ)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._chunks is not None and all(hasattr(self.recv_messages, name) for name in _ASSEMBLER):
            self.recv_messages = ViewAssembler(self.max_queue_high, self.max_queue_low,
                                               pause=cast(asyncio.Transport, transport).pause_reading,
                                               resume=cast(asyncio.Transport, transport).resume_reading)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._chunks is None:
            return memoryview(self._scratch)
        return self._chunks.free_space()

    def buffer_updated(self, nbytes: int) -> None:
        if self._chunks is None:
            self.data_received(bytes(self._scratch[:nbytes]))
            return
        self._chunks.filled(nbytes)
        # websockets' own handling of received data, with nothing more to copy in.
        self.data_received(b"")


#: What ViewAssembler uses of websockets' Assembler (websockets 17).
_ASSEMBLER = ("frames", "get_in_progress", "closed", "maybe_resume")


def can_read_in_place(protocol: Any) -> bool:
    """True when ``protocol`` parses through a websockets StreamReader it can be given (websockets 17).

    The reader and the parser are websockets' internals: a release that
    changes them gets a connection that reads as websockets does.
    """
    return isinstance(getattr(protocol, "reader", None), StreamReader) and hasattr(protocol, "parser") \
        and callable(getattr(protocol, "parse", None))


__all__ = ["ChunkReader", "ViewAssembler", "ViewConnection", "can_read_in_place"]
