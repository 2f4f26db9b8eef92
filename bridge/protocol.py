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
from typing import Any

import xxhash

from . import messages as m
from .errors import (
    CancelledStreamError,
    CloseCode,
    ErrorCode,
    IntegrityError,
    PagebridgeError,
    ProtocolError,
    StreamError,
    stream_error,
)

PROTOCOL_VERSION = 1
SUBPROTOCOL = "pagebridge.v1"

#: Default page size.  Large pages amortise the per-message cost (msgpack
#: header, ack bookkeeping, an executor hop for the file read); 256 KiB is
#: where loopback throughput flattens out in bench/throughput.py while a
#: window of a few pages stays small.
DEFAULT_PAGE_SIZE = 256 * 1024
#: A page must fit in one WebSocket frame under the server's max_size.
MAX_PAGE_SIZE = 4 * 1024 * 1024
#: Pages in flight per stream the server accepts.  256 pages of 256 KiB is
#: 64 MiB: enough for ~1 GB/s at 50 ms round trip.
MAX_WINDOW = 256
#: Streams open at once on one connection.
MAX_STREAMS = 64
#: Overhead of a page message beyond its data, with room to spare: the map
#: header, keys, ints and the 8-byte checksum take under 100 bytes.
PAGE_OVERHEAD = 256


def page_check(data: bytes) -> bytes:
    """The per-page checksum: XXH3-64 of the data, canonical (big-endian) bytes."""
    return xxhash.xxh3_64_digest(data)


# =================================================================== pager side


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
    import hmac

    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


# =================================================================== collector side


@dataclasses.dataclass(frozen=True, slots=True)
class Welcomed:
    welcome: m.Welcome


@dataclasses.dataclass(frozen=True, slots=True)
class ListingReceived:
    listing: m.Listing


@dataclasses.dataclass(frozen=True, slots=True)
class RequestFailed:
    id: int
    error: StreamError


@dataclasses.dataclass(frozen=True, slots=True)
class StreamOpened:
    opened: m.Opened


@dataclasses.dataclass(frozen=True, slots=True)
class PageReceived:
    """A verified page, in order.  Call consumed() once the consumer took it."""

    page: m.Page


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    event: m.Event


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream is complete and its digest verified."""

    end: m.End


@dataclasses.dataclass(frozen=True, slots=True)
class StreamFailed:
    stream: int
    error: StreamError


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The server refused the connection (bad token, protocol error)."""

    error: PagebridgeError


CollectorEvent = (Welcomed | ListingReceived | RequestFailed | StreamOpened | PageReceived
                  | StreamEvent | StreamEnded | StreamFailed | ConnectionFailed)


class CollectorStream:
    """One paging as the collector sees it: order, credits, integrity.

    With ``window=None`` the window adapts: it starts at ``initial_window``
    and grows each round trip in which the consumer took at least half a
    window (fourfold while under a quarter of the cap, then twofold), up to
    ``max_window`` pages — the receive-window autotuning of
    TCP stacks, so a long fat pipe fills while a slow consumer keeps a small
    window (see docs/protocol.md, "Window").
    """

    def __init__(self, request: m.Open, *, auto: bool, max_window: int) -> None:
        self.id = request.stream
        self.request = request
        self.auto = auto
        self.window = request.window
        self.max_window = max(max_window, request.window)
        self.granted_max = request.window - 1
        self.expected_seq = 0
        self.expected_offset = request.offset
        self.consumed_seq = -1
        self.acked_seq = -1
        self.received_bytes = 0
        self.opened: m.Opened | None = None
        self.closed = False
        self._digest = xxhash.xxh3_128() if request.integrity else None
        self._sha256 = hashlib.sha256() if request.sha256 else None
        # round-trip probe for autotuning: (seq whose arrival ends it, start time, consumed_seq then)
        self._probe: tuple[int, float, int] | None = None

    def receive_page(self, page: m.Page, now: float) -> None:
        if self.opened is None:
            raise ProtocolError(f"page for stream {self.id} before 'opened'")
        if page.seq != self.expected_seq:
            kind = "duplicate" if page.seq < self.expected_seq else "gap before"
            raise StreamError(f"{kind} page {page.seq} on stream {self.id} "
                              f"(expected {self.expected_seq})", ErrorCode.BAD_MESSAGE)
        if page.seq > self.granted_max:
            raise StreamError(f"page {page.seq} on stream {self.id} exceeds the credit "
                              f"(up to {self.granted_max})", ErrorCode.CREDIT_VIOLATION)
        if page.offset != self.expected_offset:
            raise StreamError(f"page {page.seq} on stream {self.id} is at offset {page.offset}, "
                              f"expected {self.expected_offset}", ErrorCode.BAD_MESSAGE)
        digest = self._digest
        if not page.data or (digest is not None and page_check(page.data) != page.xxh):
            raise IntegrityError(f"page {page.seq} of stream {self.id} (offset {page.offset}) "
                                 "failed its checksum")
        self.expected_seq += 1
        self.expected_offset += len(page.data)
        self.received_bytes += len(page.data)
        if digest is not None:
            digest.update(page.data)
        if self._sha256 is not None:
            self._sha256.update(page.data)
        probe = self._probe
        if probe is not None and page.seq >= probe[0]:
            self._probe = None
            if self.auto and self.consumed_seq - probe[2] >= self.window // 2:
                # Far below the cap, grow fourfold per round trip (a quick
                # start for long fat pipes); near it, double.
                factor = 4 if self.window * 4 <= self.max_window else 2
                self.window = min(self.window * factor, self.max_window)

    def receive_event(self, event: m.Event) -> None:
        self.expected_offset = event.offset

    def receive_end(self, end: m.End) -> None:
        if end.pages != self.expected_seq or end.length != self.received_bytes:
            raise IntegrityError(
                f"stream {self.id} ended after {end.pages} pages / {end.length} bytes, "
                f"but {self.expected_seq} pages / {self.received_bytes} bytes arrived")
        if self._digest is not None and end.digest != self._digest.digest():
            raise IntegrityError(f"stream {self.id}: digest of the received bytes does not match")
        if self._sha256 is not None and end.sha256 != self._sha256.digest():
            raise IntegrityError(f"stream {self.id}: sha256 of the received bytes does not match")

    def consumed(self, seq: int, now: float) -> m.Ack | None:
        """The consumer took page ``seq``: maybe an ack granting more credit."""
        self.consumed_seq = max(self.consumed_seq, seq)
        # Ack every page at window 1 (stop-and-wait); otherwise every quarter
        # window, which keeps the pipe full while sending 4x fewer acks.
        if self.consumed_seq - self.acked_seq < max(1, self.window // 4):
            return None
        self.acked_seq = self.consumed_seq
        self.granted_max = self.consumed_seq + self.window
        if self._probe is None:
            self._probe = (self.granted_max, now, self.consumed_seq)
        return m.Ack(self.id, self.consumed_seq, self.granted_max)

    @property
    def sha256(self) -> bytes | None:
        return self._sha256.digest() if self._sha256 is not None else None


class CollectorProtocol:
    """The collector side of one connection.

    Args:
        token: sent in ``hello``.
        agent: a name for logs.
        max_window_bytes: the adaptive window never holds more than this many
            bytes in flight per stream (it bounds the collector's memory).
    """

    def __init__(self, *, token: str | None = None, agent: str | None = "pagebridge-py",
                 max_window_bytes: int = 32 * 1024 * 1024, initial_window: int = 32) -> None:
        self.welcome: m.Welcome | None = None
        self.streams: dict[int, CollectorStream] = {}
        self.max_window_bytes = max_window_bytes
        self.initial_window = initial_window
        self._next_stream = 1
        self._next_request = 1
        self._out: list[bytes] = [m.Hello(token, agent).encode()]

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def _send(self, message: m.Message) -> None:
        self._out.append(message.encode())

    # ------------------------------------------------------------ requests

    def request_list(self, path: str = "") -> int:
        rid = self._next_request
        self._next_request += 1
        self._send(m.List(rid, path))
        return rid

    def open(self, path: str, *, offset: int = 0, length: int | None = None,
             window: int | None = None, page_size: int | None = None,
             if_match: str | None = None, follow: bool = False, text: bool = False,
             sha256: bool = False, integrity: bool = True) -> int:
        """Open a stream; ``window=None`` selects the adaptive window."""
        welcome = self.welcome
        server_max = welcome.max_window if welcome else MAX_WINDOW
        effective_page = page_size or (welcome.page_size if welcome else DEFAULT_PAGE_SIZE)
        max_window = max(1, min(server_max, self.max_window_bytes // effective_page))
        if window is None:
            initial = min(self.initial_window, max_window)
        else:
            if not 1 <= window <= server_max:
                raise ValueError(f"window must be between 1 and {server_max}")
            initial = window
        sid = self._next_stream
        self._next_stream += 1
        request = m.Open(sid, path, offset, length, initial, page_size, if_match, follow,
                         text, sha256, integrity)
        self.streams[sid] = CollectorStream(request, auto=window is None, max_window=max_window)
        self._send(request)
        return sid

    def consumed(self, sid: int, seq: int, now: float) -> None:
        stream = self.streams.get(sid)
        if stream is not None and not stream.closed:
            ack = stream.consumed(seq, now)
            if ack is not None:
                self._send(ack)

    def cancel(self, sid: int) -> None:
        stream = self.streams.pop(sid, None)
        if stream is not None and not stream.closed:
            stream.closed = True
            self._send(m.Cancel(sid))

    # ------------------------------------------------------------ input

    def receive(self, frame: bytes, now: float = 0.0) -> list[CollectorEvent]:
        """Handle one frame from the server.

        Raises:
            ProtocolError: the frame is undecodable or breaks the connection's
                rules; the caller closes with :attr:`CloseCode.PROTOCOL_ERROR`.
        """
        message = m.decode(frame)
        if self.welcome is None:
            if isinstance(message, m.Welcome):
                if message.version != PROTOCOL_VERSION:
                    raise ProtocolError(f"server speaks version {message.version}")
                self.welcome = message
                return [Welcomed(message)]
            if isinstance(message, m.Error) and message.stream is None and message.id is None:
                return [ConnectionFailed(ProtocolError(message.message, _code(message.code)))]
            raise ProtocolError(f"expected 'welcome', got {message.TYPE!r}")
        if isinstance(message, m.Listing):
            return [ListingReceived(message)]
        if isinstance(message, m.Error):
            return self._receive_error(message)
        if isinstance(message, (m.Opened, m.Page, m.Event, m.End)):
            stream = self.streams.get(message.stream)
            if stream is None:
                return []  # a stream we cancelled: its last pages are still in flight
            try:
                return self._receive_stream_message(stream, message, now)
            except StreamError as exc:
                # The stream cannot be trusted any more: drop it, tell the server.
                self.cancel(stream.id)
                return [StreamFailed(stream.id, exc)]
        raise ProtocolError(f"a server may not send {message.TYPE!r} messages")

    def _receive_stream_message(self, stream: CollectorStream, message: m.Message,
                                now: float) -> list[CollectorEvent]:
        if isinstance(message, m.Page):
            stream.receive_page(message, now)
            return [PageReceived(message)]
        if isinstance(message, m.Opened):
            if stream.opened is not None:
                raise StreamError(f"stream {stream.id} opened twice", ErrorCode.BAD_MESSAGE)
            stream.opened = message
            return [StreamOpened(message)]
        if stream.opened is None:
            raise StreamError(f"{message.TYPE!r} before 'opened' on stream {stream.id}",
                              ErrorCode.BAD_MESSAGE)
        if isinstance(message, m.Event):
            stream.receive_event(message)
            return [StreamEvent(message)]
        assert isinstance(message, m.End)
        stream.receive_end(message)
        stream.closed = True
        del self.streams[stream.id]
        return [StreamEnded(message)]

    def _receive_error(self, error: m.Error) -> list[CollectorEvent]:
        exc = stream_error(error.code, error.message)
        if error.stream is not None:
            stream = self.streams.pop(error.stream, None)
            if stream is None:
                return []  # e.g. the confirmation of our own cancel
            stream.closed = True
            return [StreamFailed(error.stream, exc)]
        if error.id is not None:
            return [RequestFailed(error.id, exc)]
        return [ConnectionFailed(ProtocolError(error.message, _code(error.code)))]


def _code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.INTERNAL


def close_code_for(exc: PagebridgeError) -> CloseCode:
    """The WebSocket close code that goes with a connection-level error."""
    if exc.code is ErrorCode.UNAUTHORIZED:
        return CloseCode.POLICY_VIOLATION
    if exc.code is ErrorCode.INTERNAL:
        return CloseCode.INTERNAL_ERROR
    return CloseCode.PROTOCOL_ERROR


__all__ = [
    "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_STREAMS", "MAX_WINDOW", "PAGE_OVERHEAD",
    "PROTOCOL_VERSION", "SUBPROTOCOL",
    "CollectorEvent", "CollectorProtocol", "CollectorStream", "ConnectionFailed", "CreditGranted",
    "HelloReceived", "ListRequested", "ListingReceived", "OpenRequested", "PageReceived",
    "PagerEvent", "PagerProtocol", "PagerStream", "RequestFailed", "StreamClosed", "StreamEnded",
    "StreamEvent", "StreamFailed", "StreamOpened", "StreamState", "Welcomed", "close_code_for",
    "page_check",
]
