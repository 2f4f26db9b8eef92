"""The pager's side of the protocol: one connection's state machine, sans I/O.

Everything that decides what the server does with a collector's frames
lives in this file; the asyncio shell (:mod:`bridge.aio.server`) only moves
frames, runs sources and owns tasks.  It feeds frames to
:meth:`PagerProtocol.receive`, acts on the events returned, calls the
``accept_open`` / ``send_page`` / ``end_stream`` / ``fail_stream`` actions,
and writes out ``data_to_send()``; when :attr:`PagerProtocol.close_code` is
set it closes the WebSocket with it.

Rules that everything else relies on:

* A connection starts with ``hello`` from the collector and ``welcome``
  from the pager; nothing else is accepted before.
* Connection states: ``GREETING`` → ``OPEN`` → ``FAILED``.  Once failed
  (the peer broke the protocol, or the shell failed it), nothing more is
  processed and :attr:`~PagerProtocol.close_code` says how to close.
* Stream states: ``OPENING`` (the shell resolves the source) → ``OPEN``
  (paging) → ``ENDED``.  There is one way to end a stream early,
  :meth:`PagerProtocol.fail_stream` (it also refuses an ``OPENING`` one).
* Stream ids are chosen by the collector, are positive, and strictly
  increase over the connection (like HTTP/2 stream ids).  So an id at or
  below the highest one seen that is not open is a stream that already
  ended: late acks and cancels for it are ignored, never errors.
* Credits are absolute: an ack says "pages up to ``max`` may be sent".
  An ack whose ``seq`` is below the highest acknowledged ``seq`` is stale
  (reordered or duplicated) and changes nothing at all; an ack with the
  same ``seq`` may raise ``max``.  So duplicated and reordered acks are
  harmless by construction.
* ``end`` takes no credit.
* Page ``seq`` numbers start at 0 on each stream; ``offset`` follows the
  bytes, except after a live ``event`` that moves it (rotation,
  truncation).  The core counts what it sent (:class:`StreamStats`).
* Errors about one stream or one request end that stream or request and
  nothing else; only undecodable or out-of-order connection traffic fails
  the connection (see :class:`~bridge.errors.CloseCode`).
* Misuse by the caller raises :class:`~bridge.errors.LocalProtocolError`
  and is never sent to the peer.
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
    LocalProtocolError,
    PagebridgeError,
    ProtocolError,
    StreamError,
)
from . import codecs
from . import messages as m
from .limits import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_STREAMS,
    MAX_TEXT,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    page_check,
)


class ConnectionState(enum.Enum):
    GREETING = "greeting"  # waiting for hello
    OPEN = "open"  # welcomed; requests flow
    FAILED = "failed"  # an error ended it; close with close_code, process nothing more


class StreamState(enum.Enum):
    OPENING = "opening"  # open received, the shell is resolving the source
    OPEN = "open"  # paging
    ENDED = "ended"  # end or error sent; nothing more on this stream


# ------------------------------------------------------------------ events


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
    """A stream was reserved; answer with accept_open() or fail_stream()."""

    request: m.Open


@dataclasses.dataclass(frozen=True, slots=True)
class ScanRequested:
    """A scan stream was reserved; answer with accept_open() or fail_stream()."""

    request: m.Scan


@dataclasses.dataclass(frozen=True, slots=True)
class LocateRequested:
    """Answer with answer_locate() or reject_request()."""

    request: m.Locate


@dataclasses.dataclass(frozen=True, slots=True)
class CreditGranted:
    """More pages may be sent on ``stream``."""

    stream: int


@dataclasses.dataclass(frozen=True, slots=True)
class StreamClosed:
    """The stream ended on the collector's behalf (cancel, its error, or the
    connection failing).  The shell must stop reading its source and release it.
    """

    stream: int
    error: StreamError


@dataclasses.dataclass(frozen=True, slots=True)
class CloseConnection:
    """The connection failed; every open stream was closed (StreamClosed
    events precede this one).  Close the WebSocket with ``code``."""

    code: CloseCode
    reason: str


PagerEvent = (HelloReceived | ListRequested | OpenRequested | ScanRequested | LocateRequested
              | CreditGranted | StreamClosed | CloseConnection)


# ------------------------------------------------------------------ streams


@dataclasses.dataclass(slots=True)
class StreamStats:
    """What the core sent on one stream.  Written by the core only."""

    pages: int = 0  # pages sent, or hits messages on a scan
    bytes: int = 0  # bytes sent, or bytes scanned
    matches: int = 0  # scan: matching lines reported


class PagerStream:
    """One paging as the sender sees it: state, sequence, offset, credits, digest."""

    __slots__ = (
        "id", "state", "next_seq", "max_seq", "acked_seq", "offset", "page_size", "stats",
        "scan", "compression", "_digest", "_sha256",
    )

    def __init__(self, request: m.Open | m.Scan, page_size: int) -> None:
        self.id = request.stream
        self.state = StreamState.OPENING
        self.page_size = page_size
        self.next_seq = 0
        self.max_seq = request.window - 1  # pages 0..window-1 may go at once
        self.acked_seq = -1
        self.offset = request.offset
        self.stats = StreamStats()
        #: A scan's stream carries ``hits``, not pages (same credits, no digest).
        self.scan = isinstance(request, m.Scan)
        # integrity=False (a benchmark's control, or a link that is already
        # verified end to end) sends empty checksums and skips the digest.
        integrity = isinstance(request, m.Open) and request.integrity
        self._digest = xxhash.xxh3_128() if integrity else None
        self._sha256 = hashlib.sha256() if isinstance(request, m.Open) and request.sha256 else None
        # The codec this stream may compress pages with: the first the
        # collector offered that this server has (docs/protocol.md, "Compression").
        self.compression = codecs.choose(request.compress) if isinstance(request, m.Open) else None

    @property
    def credits(self) -> int:
        """Pages that may be sent now."""
        if self.state is not StreamState.OPEN:
            return 0
        return max(0, self.max_seq - self.next_seq + 1)

    def page(self, data: bytes | memoryview, packed: bytes | None = None) -> m.Page:
        if self.credits <= 0:
            raise LocalProtocolError(f"stream {self.id} has no credit for another page")
        if not data:
            raise LocalProtocolError("a page cannot be empty")
        if packed is not None and self.compression is None:
            raise LocalProtocolError(f"stream {self.id} did not negotiate compression")
        digest = self._digest
        # Checks and digests are over the page's own bytes, compressed or not.
        check = page_check(data) if digest is not None else b""
        if packed is None:
            page = m.Page(self.id, self.next_seq, self.offset, data, check)
        else:
            page = m.Page(self.id, self.next_seq, self.offset, packed, check, len(data))
        self.next_seq += 1
        self.offset += len(data)
        self.stats.pages += 1
        self.stats.bytes += len(data)
        if digest is not None:
            digest.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        return page

    def hits(self, scanned: int, matches: list[dict[str, Any]], count: int | None) -> m.Hits:
        if not self.scan:
            raise LocalProtocolError(f"stream {self.id} pages a file; it has no hits")
        if self.credits <= 0:
            raise LocalProtocolError(f"stream {self.id} has no credit for more hits")
        self._scanned(scanned)
        hits = m.Hits(self.id, self.next_seq, scanned, matches, count)
        self.next_seq += 1
        self.stats.pages += 1
        self.stats.matches += len(matches)
        return hits

    def _scanned(self, scanned: int) -> None:
        if scanned < self.offset:
            raise LocalProtocolError(f"scan {self.id} cannot go back from {self.offset} to {scanned}")
        self.stats.bytes += scanned - self.offset
        self.offset = scanned

    def end(self, scanned: int | None = None, count: int | None = None) -> m.End:
        if self.scan:
            if scanned is not None:
                self._scanned(scanned)
            return m.End(self.id, self.next_seq, self.stats.bytes, b"", None,
                         self.stats.matches if count is None else count)
        return m.End(
            self.id, self.next_seq, self.stats.bytes,
            self._digest.digest() if self._digest is not None else b"",
            self._sha256.digest() if self._sha256 is not None else None,
        )

    def ack(self, seq: int, max_seq: int, max_window: int) -> bool:
        """Apply an ack; True if it granted new credit.  Raises StreamError."""
        if seq < self.acked_seq:
            return False  # stale: an older ack overtaken by a newer one changes nothing
        if seq >= self.next_seq:
            raise StreamError(
                f"ack for page {seq} of stream {self.id}, which was never sent "
                f"(next page is {self.next_seq})", ErrorCode.CREDIT_VIOLATION)
        if max_seq - seq > max_window:
            raise StreamError(
                f"ack grants {max_seq - seq} pages in flight on stream {self.id}; "
                f"the limit is {max_window}", ErrorCode.CREDIT_VIOLATION)
        self.acked_seq = seq
        if max_seq > self.max_seq:
            self.max_seq = max_seq
            return True
        return False


# ------------------------------------------------------------------ the connection


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
        self.state = ConnectionState.GREETING
        #: Set when the connection failed: how the shell must close the WebSocket.
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self._streams: dict[int, PagerStream] = {}
        self._highest_stream = 0
        self._out: list[bytes | memoryview] = []
        self._errors: dict[str, int] = {}

    # ------------------------------------------------------------ queries

    def credits(self, sid: int) -> int:
        """Pages that may be sent now on ``sid`` (0 for a stream that is not open)."""
        stream = self._streams.get(sid)
        return stream.credits if stream is not None else 0

    def stream_state(self, sid: int) -> StreamState | None:
        """The state of a live stream, ``StreamState.ENDED`` for an id used before, else None."""
        stream = self._streams.get(sid)
        if stream is not None:
            return stream.state
        return StreamState.ENDED if 0 < sid <= self._highest_stream else None

    def page_size_of(self, sid: int) -> int:
        return self._stream(sid).page_size

    def compression_of(self, sid: int) -> str | None:
        """The codec negotiated for ``sid`` (None: its pages go as they are)."""
        return self._stream(sid).compression

    def stats(self, sid: int) -> StreamStats:
        """The live counters of a stream (the same object after it ends)."""
        return self._stream(sid).stats

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------ output

    def data_to_send(self) -> list[bytes | memoryview]:
        """Frames to send, in order; each is one binary WebSocket message."""
        out, self._out = self._out, []
        return out

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def _send(self, message: m.Message) -> None:
        if isinstance(message, m.Error):
            self._errors[message.code] = self._errors.get(message.code, 0) + 1
        self._out.append(message.encode())

    def take_error_counts(self) -> dict[str, int]:
        """``error`` messages queued since the last call, by code (for the server's metrics)."""
        counts, self._errors = self._errors, {}
        return counts

    # ------------------------------------------------------------ input

    def receive(self, frame: bytes | bytearray | memoryview) -> list[PagerEvent]:
        """Handle one binary frame from the collector.

        A frame that breaks the protocol fails the connection: the ``error``
        message saying why is queued, every stream is closed, and the last
        event is :class:`CloseConnection`.  After that, frames are ignored.
        """
        if self.state is ConnectionState.FAILED:
            return []
        try:
            message = m.decode(frame)
        except ProtocolError as exc:
            return self.fail(exc)
        if self.state is ConnectionState.GREETING:
            return self._receive_hello(message)
        if isinstance(message, m.List):
            return self._receive_list(message)
        if isinstance(message, (m.Open, m.Scan)):
            return self._receive_open(message)
        if isinstance(message, m.Locate):
            return self._receive_locate(message)
        if isinstance(message, m.Ack):
            return self._receive_ack(message)
        if isinstance(message, m.Cancel):
            return self._receive_cancel(message)
        return self.fail(ProtocolError(f"a collector may not send {message.TYPE!r} messages"))

    def receive_text(self) -> list[PagerEvent]:
        """The collector sent a text frame: not part of the protocol (close 1003)."""
        return self.fail(ProtocolError("text frames are not part of the protocol; send msgpack "
                                       "in binary frames"), CloseCode.UNSUPPORTED_DATA)

    def fail(self, exc: PagebridgeError, close_code: CloseCode | None = None) -> list[PagerEvent]:
        """Fail the connection: queue ``error``, close every stream, set the close code.

        The peer's errors and the shell's (no hello in time...) both end here.
        ``internal`` errors are sent with a generic sentence; details stay in
        the server's log.
        """
        if self.state is ConnectionState.FAILED:
            return []
        message = exc.message if exc.code is not ErrorCode.INTERNAL else "internal server error"
        self._send(m.Error(str(exc.code), message))
        self.state = ConnectionState.FAILED
        self.close_code = close_code or close_code_for(exc)
        self.close_reason = message[:120]
        events: list[PagerEvent] = []
        for stream in list(self._streams.values()):
            stream.state = StreamState.ENDED
            events.append(StreamClosed(stream.id, CancelledStreamError(
                "the connection failed")))
        self._streams.clear()
        events.append(CloseConnection(self.close_code, self.close_reason))
        return events

    def _receive_hello(self, message: m.Message) -> list[PagerEvent]:
        if not isinstance(message, m.Hello):
            return self.fail(ProtocolError(f"the first message must be 'hello', not {message.TYPE!r}"))
        if self._token is not None and not _constant_time_equal(message.token, self._token):
            return self.fail(ProtocolError(
                "a valid token is required" if message.token else "this server requires a token",
                ErrorCode.UNAUTHORIZED))
        self.state = ConnectionState.OPEN
        self._send(m.Welcome(PROTOCOL_VERSION, self.server_name, self.page_size,
                             self.max_page_size, self.max_window, self.max_streams))
        return [HelloReceived(message.agent)]

    def _receive_list(self, message: m.List) -> list[PagerEvent]:
        if message.id < 0:
            self._send(m.Error(str(ErrorCode.BAD_REQUEST), "request ids must not be negative",
                               id=message.id))
            return []
        return [ListRequested(message.id, message.path)]

    def _receive_locate(self, message: m.Locate) -> list[PagerEvent]:
        problem = None
        if message.id < 0:
            problem = "request ids must not be negative"
        elif message.offset is not None and message.line is not None:
            problem = "give an offset or a line, not both"
        elif message.offset is not None and message.offset < 0:
            problem = "offsets must not be negative"
        elif message.line is not None and message.line < 1:
            problem = "line numbers start at 1"
        if problem is not None:
            self._send(m.Error(str(ErrorCode.BAD_REQUEST), problem, id=message.id))
            return []
        return [LocateRequested(message)]

    def _receive_open(self, request: m.Open | m.Scan) -> list[PagerEvent]:
        sid = request.stream
        problem = None
        if sid < 1:
            problem = ErrorCode.BAD_REQUEST, "stream ids must be positive"
        elif sid in self._streams:
            problem = ErrorCode.STREAM_IN_USE, f"stream {sid} is already open"
        elif sid <= self._highest_stream:
            problem = ErrorCode.BAD_REQUEST, (
                f"stream ids must increase; {sid} is not above {self._highest_stream}")
        elif len(self._streams) >= self.max_streams:
            problem = ErrorCode.TOO_MANY_STREAMS, (
                f"this connection already has {len(self._streams)} open streams "
                f"(limit {self.max_streams})")
        elif request.offset < 0 or (request.length is not None and request.length < 0):
            problem = ErrorCode.BAD_REQUEST, "offset and length must not be negative"
        elif not 1 <= request.window <= self.max_window:
            problem = ErrorCode.BAD_REQUEST, f"window must be between 1 and {self.max_window}"
        elif isinstance(request, m.Open) and request.page_size is not None \
                and not 1 <= request.page_size <= self.max_page_size:
            problem = ErrorCode.BAD_REQUEST, (
                f"page_size must be between 1 and {self.max_page_size}")
        elif isinstance(request, m.Scan) and request.max_text is not None \
                and not 0 <= request.max_text <= MAX_TEXT:
            problem = ErrorCode.BAD_REQUEST, f"max_text must be between 0 and {MAX_TEXT}"
        if problem is not None:
            # Refused before it existed: the stream id is not consumed.
            self._send(m.Error(str(problem[0]), problem[1], stream=sid))
            return []
        self._highest_stream = sid
        if isinstance(request, m.Scan):
            self._streams[sid] = PagerStream(request, self.page_size)
            return [ScanRequested(request)]
        self._streams[sid] = PagerStream(request, request.page_size or self.page_size)
        return [OpenRequested(request)]

    def _receive_ack(self, ack: m.Ack) -> list[PagerEvent]:
        stream = self._known_stream(ack.stream)
        if stream is None:
            return []
        if ack.seq < 0 or ack.max < 0:
            return self._close_for_peer(stream, StreamError(
                "ack seq and max must not be negative", ErrorCode.BAD_REQUEST))
        try:
            granted = stream.ack(ack.seq, ack.max, self.max_window)
        except StreamError as exc:
            return self._close_for_peer(stream, exc)
        if granted and stream.state is StreamState.OPEN:
            return [CreditGranted(stream.id)]
        return []

    def _receive_cancel(self, cancel: m.Cancel) -> list[PagerEvent]:
        stream = self._known_stream(cancel.stream)
        if stream is None:
            return []
        return self._close_for_peer(stream, CancelledStreamError(
            f"stream {stream.id} cancelled by the collector"))

    def _known_stream(self, sid: int) -> PagerStream | None:
        stream = self._streams.get(sid)
        if stream is None and not 0 < sid <= self._highest_stream:
            self._send(m.Error(str(ErrorCode.UNKNOWN_STREAM),
                               f"stream {sid} was never opened", stream=sid))
        return stream  # None for an ended stream: a late message, ignored

    def _close_for_peer(self, stream: PagerStream, exc: StreamError) -> list[PagerEvent]:
        self._end(stream, m.Error(str(exc.code), exc.message, stream=stream.id))
        return [StreamClosed(stream.id, exc)]

    def _end(self, stream: PagerStream, last: m.Message) -> None:
        del self._streams[stream.id]
        stream.state = StreamState.ENDED
        self._send(last)

    def _stream(self, sid: int) -> PagerStream:
        stream = self._streams.get(sid)
        if stream is None:
            raise LocalProtocolError(f"stream {sid} is not open")
        return stream

    # ------------------------------------------------------------ actions of the shell

    def accept_open(
        self, sid: int, *, path: str, size: int | None, length: int | None,
        mtime: float | None, etag: str | None,
    ) -> StreamStats:
        """The source is ready: announce it and start paging.  Returns the stream's counters."""
        stream = self._stream(sid)
        if stream.state is not StreamState.OPENING:
            raise LocalProtocolError(f"stream {sid} was accepted already")
        stream.state = StreamState.OPEN
        self._send(m.Opened(sid, path, stream.offset, size, length, mtime, etag,
                            None if stream.scan else stream.page_size, stream.compression))
        return stream.stats

    def send_page(self, sid: int, data: bytes | memoryview, *, packed: bytes | None = None,
                  spaced: memoryview | None = None) -> None:
        """Queue one page; the caller checked credits(sid) > 0.

        ``packed`` is ``data`` compressed with the stream's codec
        (:meth:`compression_of`), when that paid; the shell compresses, off
        the event loop, with a codec from :func:`bridge.core.codecs.make`.

        ``spaced``: a writable view that ends with ``data`` and has room
        before it (:data:`~bridge.core.messages.PAGE_HEADROOM`); the header
        is written into the room and the frame is a view of ``spaced``, so
        the page is not copied into a new frame.  The frame then lives as
        long as the caller's buffer does: the caller keeps it unchanged
        until the frame is sent.
        """
        page = self._stream(sid).page(data, packed)
        if spaced is not None and packed is None:
            header = m.page_header(page.stream, page.seq, page.offset, page.xxh, len(data))
            at = len(spaced) - len(data) - len(header)
            if at >= 0:
                spaced[at:at + len(header)] = header
                self._out.append(spaced[at:])
                return
        self._out.append(page.encode())

    def send_hits(self, sid: int, scanned: int, matches: list[dict[str, Any]],
                  count: int | None = None) -> None:
        """Queue one ``hits`` message (one credit): ``matches`` found up to offset ``scanned``.

        ``count`` is the running total of matching lines, for scans that
        send no matches (``count_only``).
        """
        self._out.append(self._stream(sid).hits(scanned, matches, count).encode())

    def send_event(self, sid: int, kind: str, offset: int, *, lost: int | None = None,
                   detail: str | None = None) -> None:
        """Tell the collector about its live source; ``offset`` becomes the next page's."""
        stream = self._stream(sid)
        if stream.state is not StreamState.OPEN:
            raise LocalProtocolError(f"stream {sid} is not paging yet")
        stream.offset = offset
        self._send(m.Event(sid, kind, offset, lost, detail))

    def end_stream(self, sid: int, *, scanned: int | None = None,
                   count: int | None = None) -> StreamStats:
        """The source is exhausted: send ``end`` (it takes no credit) and free the stream.

        A scan passes where it ended (``scanned``) and, when it sent no
        matches (``count_only``), how many lines matched.
        """
        stream = self._stream(sid)
        if stream.state is not StreamState.OPEN:
            raise LocalProtocolError(f"stream {sid} cannot end before it is accepted")
        self._end(stream, stream.end(scanned, count))
        return stream.stats

    def fail_stream(self, sid: int, code: ErrorCode, message: str) -> StreamStats | None:
        """End a stream with ``error`` (its source failed, or could not be opened).

        The one way to end a stream early, in ``OPENING`` or ``OPEN``.  A
        stream that already ended (the collector cancelled it meanwhile) is
        left alone and None returned.  ``internal`` is sent with a generic
        sentence: the details belong in the server's log.
        """
        stream = self._streams.get(sid)
        if stream is None:
            return None
        if code is ErrorCode.INTERNAL:
            message = "the server failed on this stream; see its log"
        self._end(stream, m.Error(str(code), message, stream=sid))
        return stream.stats

    def answer_list(self, request_id: int, path: str, entries: list[dict[str, Any]],
                    truncated: bool = False) -> None:
        self._send(m.Listing(request_id, path, entries, truncated))

    def answer_locate(self, request_id: int, path: str, *, etag: str, size: int, line: int,
                      offset: int, lines: int) -> None:
        self._send(m.Located(request_id, path, etag, size, line, offset, lines))

    def reject_request(self, request_id: int, code: ErrorCode, message: str) -> None:
        if code is ErrorCode.INTERNAL:
            message = "the server failed on this request; see its log"
        self._send(m.Error(str(code), message, id=request_id))


def _constant_time_equal(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def close_code_for(exc: PagebridgeError) -> CloseCode:
    """The WebSocket close code that goes with a connection-level error."""
    if exc.code is ErrorCode.UNAUTHORIZED:
        return CloseCode.POLICY_VIOLATION
    if exc.code is ErrorCode.INTERNAL:
        return CloseCode.INTERNAL_ERROR
    return CloseCode.PROTOCOL_ERROR


__all__ = [
    "CloseConnection", "ConnectionState", "CreditGranted", "HelloReceived", "ListRequested",
    "LocateRequested", "OpenRequested", "ScanRequested", "PagerEvent", "PagerProtocol", "PagerStream", "StreamClosed", "StreamState",
    "StreamStats", "close_code_for",
]
