"""The sans-I/O core: the pager's and the collector's state machines.

Nothing here touches a socket, a file or an event loop.  Each side takes
frames in (``receive``) and hands out events; whatever it wants to send
piles up in ``data_to_send()``.  The asyncio server and client only move
bytes between a WebSocket and these objects, and tests pair the two sides
in memory.

Rules that everything else relies on:

* A connection starts with ``hello`` from the collector and ``welcome``
  from the pager; nothing else is accepted before.
* Stream ids are chosen by the collector, are positive, and strictly
  increase over the connection (like HTTP/2 stream ids).  So an id at or
  below the highest one seen that is not open is a stream that already
  ended: late acks and cancels for it are ignored, never errors.
* Credits are absolute: an ack says "pages up to ``max`` may be sent".
  A smaller ``max`` or ``seq`` than already known is a stale, reordered or
  duplicated message and changes nothing.  So duplicated and reordered acks
  are harmless by construction.
* Page ``seq`` numbers start at 0 on each stream; ``offset`` follows the
  bytes, except after a live ``event`` that moves it (rotation,
  truncation).  Every page carries the XXH3-64 of its data; ``end`` carries
  the count, the length and the XXH3-128 of all the bytes of the stream.
* Errors about one stream or one request end that stream or request and
  nothing else; only undecodable or out-of-order connection traffic closes
  the connection (see :class:`~bridge.errors.CloseCode`).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
from typing import Any

import xxhash

from ..errors import (
    CancelledStreamError,
    CloseCode,
    ErrorCode,
    PagebridgeError,
    ProtocolError,
    StreamError,
)
from . import messages as m
from .limits import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_STREAMS,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    page_check,
)


class StreamState(enum.Enum):
    OPENING = "opening"  # open received, the server is resolving the source
    OPEN = "open"  # paging
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True, slots=True)
class HelloReceived:
    """The collector said hello with a valid token (or none was needed)."""

    agent: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ListRequested:
    id: int
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class OpenRequested:
    """A stream was reserved; answer with accept_open() or reject_open()."""

    request: m.Open


@dataclasses.dataclass(frozen=True, slots=True)
class CreditGranted:
    """More pages may be sent on ``stream``."""

    stream: int


@dataclasses.dataclass(frozen=True, slots=True)
class StreamClosed:
    """The stream ended on the collector's behalf (cancel or its error).

    The I/O layer must stop reading its source and release it.
    """

    stream: int
    error: StreamError


PagerEvent = HelloReceived | ListRequested | OpenRequested | CreditGranted | StreamClosed


class PagerStream:
    """One paging as the sender sees it: sequence, offset, credits, digest."""

    __slots__ = (
        "id", "state", "next_seq", "max_seq", "acked_seq", "offset",
        "sent_bytes", "page_size", "window", "_digest", "_sha256",
    )

    def __init__(self, request: m.Open, page_size: int) -> None:
        self.id = request.stream
        self.state = StreamState.OPENING
        self.window = request.window
        self.page_size = page_size
        self.next_seq = 0
        self.max_seq = request.window - 1  # pages 0..window-1 may go at once
        self.acked_seq = -1
        self.offset = request.offset
        self.sent_bytes = 0
        # integrity=False (a benchmark's control, or a link that is already
        # verified end to end) sends empty checksums and skips the digest.
        self._digest = xxhash.xxh3_128() if request.integrity else None
        self._sha256 = hashlib.sha256() if request.sha256 else None

    @property
    def credits(self) -> int:
        """Pages that may be sent now."""
        if self.state is not StreamState.OPEN:
            return 0
        return max(0, self.max_seq - self.next_seq + 1)

    def page(self, data: bytes) -> m.Page:
        if self.credits <= 0:
            raise PagebridgeError(f"stream {self.id} has no credit for another page")
        if not data:
            raise PagebridgeError("a page cannot be empty")
        digest = self._digest
        page = m.Page(self.id, self.next_seq, self.offset, data,
                      page_check(data) if digest is not None else b"")
        self.next_seq += 1
        self.offset += len(data)
        self.sent_bytes += len(data)
        if digest is not None:
            digest.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        return page

    def end(self) -> m.End:
        return m.End(
            self.id, self.next_seq, self.sent_bytes,
            self._digest.digest() if self._digest is not None else b"",
            self._sha256.digest() if self._sha256 is not None else None,
        )

    def ack(self, seq: int, max_seq: int, max_window: int) -> bool:
        """Apply an ack; True if it granted new credit.  Raises StreamError."""
        if seq >= self.next_seq:
            raise StreamError(
                f"ack for page {seq} of stream {self.id}, which was never sent "
                f"(next page is {self.next_seq})", ErrorCode.CREDIT_VIOLATION)
        if max_seq - max(seq, self.acked_seq) > max_window:
            raise StreamError(
                f"ack grants {max_seq - seq} pages in flight on stream {self.id}; "
                f"the limit is {max_window}", ErrorCode.CREDIT_VIOLATION)
        self.acked_seq = max(self.acked_seq, seq)
        if max_seq > self.max_seq:
            self.max_seq = max_seq
            return True
        return False


class PagerProtocol:
    """The server side of one connection.

    Args:
        token: if set, the collector's hello must carry this token.
        page_size: default page size for streams that do not ask for one.
        max_page_size, max_window, max_streams: per-connection limits,
            refused with ``bad_request`` / ``too_many_streams``.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        server_name: str = "pagebridge",
        page_size: int = DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        max_window: int = MAX_WINDOW,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        if not 1 <= page_size <= max_page_size:
            raise ValueError("page_size must be between 1 and max_page_size")
        if max_window < 1 or max_streams < 1:
            raise ValueError("max_window and max_streams must be at least 1")
        self._token = token
        self.server_name = server_name
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.max_window = max_window
        self.max_streams = max_streams
        self.greeted = False
        self.streams: dict[int, PagerStream] = {}
        self.highest_stream = 0
        self._out: list[bytes] = []

    # ------------------------------------------------------------ output

    def data_to_send(self) -> list[bytes]:
        """Frames to send, in order; each is one binary WebSocket message."""
        out, self._out = self._out, []
        return out

    def _send(self, message: m.Message) -> None:
        self._out.append(message.encode())

    # ------------------------------------------------------------ input

    def receive(self, frame: bytes) -> list[PagerEvent]:
        """Handle one frame from the collector.

        Raises:
            ProtocolError: the connection must close; ``close_code`` says how.
                An ``error`` message explaining why is already queued.
        """
        try:
            message = m.decode(frame)
        except ProtocolError as exc:
            self.fail_connection(exc)
            raise
        if not self.greeted:
            return self._receive_hello(message)
        handler = {
            m.List: self._receive_list,
            m.Open: self._receive_open,
            m.Ack: self._receive_ack,
            m.Cancel: self._receive_cancel,
        }.get(type(message))
        if handler is None:
            refusal = ProtocolError(f"a collector may not send {message.TYPE!r} messages")
            self.fail_connection(refusal)
            raise refusal
        return handler(message)  # type: ignore[operator]

    def fail_connection(self, exc: PagebridgeError) -> None:
        """Queue the error message that precedes closing the connection."""
        self._send(m.Error(str(exc.code), exc.message))

    def _receive_hello(self, message: m.Message) -> list[PagerEvent]:
        if not isinstance(message, m.Hello):
            exc = ProtocolError(f"the first message must be 'hello', not {message.TYPE!r}")
            self.fail_connection(exc)
            raise exc
        if self._token is not None and not _constant_time_equal(message.token, self._token):
            exc = ProtocolError(
                "a valid token is required" if message.token else "this server requires a token",
                ErrorCode.UNAUTHORIZED)
            self.fail_connection(exc)
            raise exc
        self.greeted = True
        self._send(m.Welcome(PROTOCOL_VERSION, self.server_name, self.page_size,
                             self.max_page_size, self.max_window, self.max_streams))
        return [HelloReceived(message.agent)]

    def _receive_list(self, message: m.List) -> list[PagerEvent]:
        return [ListRequested(message.id, message.path)]

    def _receive_open(self, request: m.Open) -> list[PagerEvent]:
        sid = request.stream
        problem = None
        if sid < 1:
            problem = ErrorCode.BAD_REQUEST, "stream ids must be positive"
        elif sid in self.streams:
            problem = ErrorCode.STREAM_IN_USE, f"stream {sid} is already open"
        elif sid <= self.highest_stream:
            problem = ErrorCode.BAD_REQUEST, (
                f"stream ids must increase; {sid} is not above {self.highest_stream}")
        elif len(self.streams) >= self.max_streams:
            problem = ErrorCode.TOO_MANY_STREAMS, (
                f"this connection already has {len(self.streams)} open streams "
                f"(limit {self.max_streams})")
        elif request.offset < 0 or (request.length is not None and request.length < 0):
            problem = ErrorCode.BAD_REQUEST, "offset and length must not be negative"
        elif not 1 <= request.window <= self.max_window:
            problem = ErrorCode.BAD_REQUEST, f"window must be between 1 and {self.max_window}"
        elif request.page_size is not None and not 1 <= request.page_size <= self.max_page_size:
            problem = ErrorCode.BAD_REQUEST, (
                f"page_size must be between 1 and {self.max_page_size}")
        if problem is not None:
            self._send(m.Error(str(problem[0]), problem[1], stream=sid))
            return []
        self.highest_stream = sid
        self.streams[sid] = PagerStream(request, request.page_size or self.page_size)
        return [OpenRequested(request)]

    def _receive_ack(self, ack: m.Ack) -> list[PagerEvent]:
        stream = self._known_stream(ack.stream)
        if stream is None:
            return []
        if ack.seq < 0:
            return self._fail_stream(stream, StreamError(
                "ack seq must not be negative", ErrorCode.BAD_REQUEST))
        try:
            granted = stream.ack(ack.seq, ack.max, self.max_window)
        except StreamError as exc:
            return self._fail_stream(stream, exc)
        if granted and stream.state is StreamState.OPEN:
            return [CreditGranted(stream.id)]
        return []

    def _receive_cancel(self, cancel: m.Cancel) -> list[PagerEvent]:
        stream = self._known_stream(cancel.stream)
        if stream is None:
            return []
        return self._fail_stream(stream, CancelledStreamError(
            f"stream {stream.id} cancelled by the collector"))

    def _known_stream(self, sid: int) -> PagerStream | None:
        stream = self.streams.get(sid)
        if stream is None and not 0 < sid <= self.highest_stream:
            self._send(m.Error(str(ErrorCode.UNKNOWN_STREAM),
                               f"stream {sid} was never opened", stream=sid))
        return stream  # None for an ended stream: a late message, ignored

    def _fail_stream(self, stream: PagerStream, exc: StreamError) -> list[PagerEvent]:
        del self.streams[stream.id]
        stream.state = StreamState.CLOSED
        self._send(m.Error(str(exc.code), exc.message, stream=stream.id))
        return [StreamClosed(stream.id, exc)]

    # ------------------------------------------------------------ actions of the I/O layer

    def accept_open(
        self, sid: int, *, path: str, size: int | None, length: int | None,
        mtime: float | None, etag: str | None,
    ) -> PagerStream:
        """The source is ready: announce it and start paging."""
        stream = self.streams[sid]
        stream.state = StreamState.OPEN
        self._send(m.Opened(sid, path, stream.offset, size, length, mtime, etag, stream.page_size))
        return stream

    def reject_open(self, sid: int, code: ErrorCode, message: str) -> None:
        """The source cannot be opened: free the stream, tell the collector."""
        stream = self.streams.pop(sid, None)
        if stream is not None:
            stream.state = StreamState.CLOSED
            self._send(m.Error(str(code), message, stream=sid))

    def answer_list(self, request_id: int, path: str, entries: list[dict[str, Any]]) -> None:
        self._send(m.Listing(request_id, path, entries))

    def reject_request(self, request_id: int, code: ErrorCode, message: str) -> None:
        self._send(m.Error(str(code), message, id=request_id))

    def credits(self, sid: int) -> int:
        stream = self.streams.get(sid)
        return stream.credits if stream is not None else 0

    def send_page(self, sid: int, data: bytes) -> None:
        """Queue one page; the caller checked credits(sid) > 0."""
        self._out.append(self.streams[sid].page(data).encode())

    def send_event(self, sid: int, kind: str, offset: int, *, lost: int | None = None,
                   detail: str | None = None) -> None:
        """Tell the collector about its live source; ``offset`` becomes the next page's."""
        stream = self.streams[sid]
        stream.offset = offset
        self._send(m.Event(sid, kind, offset, lost, detail))

    def end_stream(self, sid: int) -> None:
        """The source is exhausted: send ``end`` and free the stream."""
        stream = self.streams.pop(sid)
        stream.state = StreamState.CLOSED
        self._send(stream.end())

    def fail_stream(self, sid: int, code: ErrorCode, message: str) -> None:
        """The source failed: send ``error`` for this stream only."""
        stream = self.streams.pop(sid, None)
        if stream is not None:
            stream.state = StreamState.CLOSED
            self._send(m.Error(str(code), message, stream=sid))


def _constant_time_equal(given: str | None, expected: str) -> bool:

    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def close_code_for(exc: PagebridgeError) -> CloseCode:
    """The WebSocket close code that goes with a connection-level error."""
    if exc.code is ErrorCode.UNAUTHORIZED:
        return CloseCode.POLICY_VIOLATION
    if exc.code is ErrorCode.INTERNAL:
        return CloseCode.INTERNAL_ERROR
    return CloseCode.PROTOCOL_ERROR
