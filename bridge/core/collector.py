"""The collector's side of the protocol: order, credits, integrity, the window.

Sans-I/O like :mod:`bridge.core.pager`: frames in (:meth:`CollectorProtocol.receive`),
events out, frames to send piled up in ``data_to_send()``.  The asyncio
client (:mod:`bridge.aio.client`) and, in JavaScript, ``web/collector.js``
follow the same rules; tests/vectors/ replays the same scripts against both.

* Connection states: ``GREETING`` (hello sent, waiting for ``welcome``) →
  ``OPEN`` → ``FAILED``.  A server that breaks the protocol fails the
  connection (close 1002, :attr:`CollectorProtocol.close_code`); a server
  that refuses it (``error`` without ``stream``/``id``) fails it too, and
  closes it itself.  Once failed, nothing more is processed.
* Stream states: ``OPENING`` (``open`` sent) → ``OPEN`` (``opened``
  received) → ``ENDED`` (``end``, ``error``, ``cancel``, or the connection
  failing).  A stream that detects a bad page fails alone and sends
  ``cancel``; the connection lives on.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Callable
from typing import Any

import xxhash

from ..errors import (
    CloseCode,
    ConnectionClosedError,
    ErrorCode,
    IntegrityError,
    LocalProtocolError,
    PagebridgeError,
    ProtocolError,
    StreamError,
    stream_error,
)
from . import codecs
from . import messages as m
from .limits import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    page_check,
)


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
class HitsReceived:
    """Matches of a scan, in order, checked.  Call consumed() once the consumer took them."""

    hits: m.Hits


@dataclasses.dataclass(frozen=True, slots=True)
class LocatedReceived:
    located: m.Located


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    event: m.Event


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream is complete: pages and length checked, its digest too (unless opened with ``digest=False``)."""

    end: m.End


@dataclasses.dataclass(frozen=True, slots=True)
class StreamFailed:
    stream: int
    error: PagebridgeError


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The connection failed: the server refused it (bad token...), or broke
    the protocol.  Every open stream got a StreamFailed event before this one.

    ``close_code`` is how the collector must close the WebSocket, or None when
    the server closes it (it sent the error).
    """

    error: PagebridgeError
    close_code: CloseCode | None = None


CollectorEvent = (Welcomed | ListingReceived | LocatedReceived | RequestFailed | StreamOpened
                  | PageReceived | HitsReceived | StreamEvent | StreamEnded | StreamFailed
                  | ConnectionFailed)


class ConnectionState(enum.Enum):
    GREETING = "greeting"
    OPEN = "open"
    FAILED = "failed"


class StreamState(enum.Enum):
    OPENING = "opening"
    OPEN = "open"
    ENDED = "ended"


class CollectorStream:
    """One paging as the collector sees it: order, credits, integrity.

    With ``window=None`` the window adapts: it starts at ``initial_window``
    and grows each round trip in which the consumer took at least half a
    window (fourfold while under a quarter of the cap, then twofold), up to
    ``max_window`` pages — the receive-window autotuning of
    TCP stacks, so a long fat pipe fills while a slow consumer keeps a small
    window (see docs/protocol.md, "Window").
    """

    def __init__(self, request: m.Open | m.Scan, *, auto: bool, max_window: int,
                 digest: bool = True) -> None:
        self.id = request.stream
        self.request = request
        self.state = StreamState.OPENING
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
        #: A scan: ``hits`` instead of pages; ``expected_offset`` is how far it scanned.
        self.scan = isinstance(request, m.Scan)
        self.matches = 0
        self._codec: codecs.Codec | None = None
        integrity = request.integrity if isinstance(request, m.Open) else False
        sha256 = request.sha256 if isinstance(request, m.Open) else False
        #: pages carry an XXH3-64 to verify; ``_digest`` re-checks the whole
        #: stream's XXH3-128 (optional for a collector, always on here: native
        #: xxhash makes the second pass nearly free).
        self._check = integrity
        self._digest = xxhash.xxh3_128() if integrity and digest else None
        self._sha256 = hashlib.sha256() if sha256 else None
        # round-trip probe for autotuning: (seq whose arrival ends it, start time, consumed_seq then)
        self._probe: tuple[int, float, int] | None = None

    def receive_opened(self, opened: m.Opened) -> None:
        if self.state is not StreamState.OPENING:
            raise StreamError(f"stream {self.id} opened twice", ErrorCode.BAD_MESSAGE)
        if opened.compression is not None:
            offered = self.request.compress if isinstance(self.request, m.Open) else None
            if opened.compression not in (offered or ()):
                raise StreamError(f"stream {self.id}: the server chose compression "
                                  f"{opened.compression[:20]!r}, which was not offered", ErrorCode.BAD_MESSAGE)
            self._codec = codecs.make(opened.compression)
        self.state = StreamState.OPEN
        self.opened = opened
        self.expected_offset = opened.offset

    def receive_hits(self, hits: m.Hits, now: float) -> None:
        if not self.scan:
            raise StreamError(f"'hits' on stream {self.id}, which pages a file", ErrorCode.BAD_MESSAGE)
        self._check_seq(hits.seq)
        if hits.scanned < self.expected_offset:
            raise StreamError(f"hits {hits.seq} on stream {self.id} goes back to offset "
                              f"{hits.scanned} from {self.expected_offset}", ErrorCode.BAD_MESSAGE)
        if not _valid_matches(hits.matches, hits.scanned):
            raise StreamError(f"hits {hits.seq} on stream {self.id} holds a malformed or "
                              "misplaced match", ErrorCode.BAD_MESSAGE)
        self.expected_seq += 1
        self.received_bytes += hits.scanned - self.expected_offset
        self.expected_offset = hits.scanned
        self.matches += len(hits.matches)

    def _check_seq(self, seq: int) -> None:
        if seq != self.expected_seq:
            kind = "duplicate" if seq < self.expected_seq else "gap before"
            raise StreamError(f"{kind} message {seq} on stream {self.id} "
                              f"(expected {self.expected_seq})", ErrorCode.BAD_MESSAGE)
        if seq > self.granted_max:
            raise StreamError(f"message {seq} on stream {self.id} exceeds the credit "
                              f"(up to {self.granted_max})", ErrorCode.CREDIT_VIOLATION)

    def receive_page(self, page: m.Page, now: float) -> m.Page:
        """Check a page; returns it with its data decompressed when it came compressed."""
        if self.scan:
            raise StreamError(f"'page' on scan stream {self.id}", ErrorCode.BAD_MESSAGE)
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
        if page.size is not None:
            page = self._decompress(page)
        digest = self._digest
        if not page.data:
            # A page carries at least one byte (docs/protocol.md §2): a malformed page, not corruption.
            raise StreamError(f"page {page.seq} on stream {self.id} is empty", ErrorCode.BAD_MESSAGE)
        if self._check and page_check(page.data) != page.xxh:
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
        return page

    def _decompress(self, page: m.Page) -> m.Page:
        codec, size = self._codec, page.size
        assert size is not None
        if codec is None:
            raise StreamError(f"compressed page {page.seq} on stream {self.id}, which did not "
                              "negotiate compression", ErrorCode.BAD_MESSAGE)
        asked = self.request.page_size if isinstance(self.request, m.Open) else None
        limit = (self.opened.page_size if self.opened is not None else None) or asked or MAX_PAGE_SIZE
        if not 1 <= size <= limit:
            raise StreamError(f"compressed page {page.seq} on stream {self.id} claims {size} bytes "
                              f"(pages are 1 to {limit})", ErrorCode.BAD_MESSAGE)
        try:
            data = codec.decompress(page.data, size)
        except IntegrityError as exc:
            raise IntegrityError(f"page {page.seq} of stream {self.id} (offset {page.offset}): "
                                 f"{exc.message}") from None
        return m.Page(page.stream, page.seq, page.offset, data, page.xxh)

    def receive_event(self, event: m.Event) -> None:
        self.expected_offset = event.offset

    def receive_end(self, end: m.End) -> None:
        if self.scan:
            request = self.request
            assert isinstance(request, m.Scan)
            if end.pages != self.expected_seq or end.count is None or (
                    not request.count_only and end.count != self.matches):
                raise StreamError(
                    f"scan {self.id} ended after {end.pages} hits / {end.count} matches, but "
                    f"{self.expected_seq} hits / {self.matches} matches arrived", ErrorCode.BAD_MESSAGE)
            if end.length < self.received_bytes:
                raise StreamError(f"scan {self.id} ended having scanned {end.length} bytes, fewer "
                                  f"than its hits reported ({self.received_bytes})", ErrorCode.BAD_MESSAGE)
            self.state = StreamState.ENDED
            return
        if end.pages != self.expected_seq or end.length != self.received_bytes:
            raise IntegrityError(
                f"stream {self.id} ended after {end.pages} pages / {end.length} bytes, "
                f"but {self.expected_seq} pages / {self.received_bytes} bytes arrived")
        if self._digest is not None and end.digest != self._digest.digest():
            raise IntegrityError(f"stream {self.id}: digest of the received bytes does not match")
        if self._sha256 is not None and end.sha256 != self._sha256.digest():
            raise IntegrityError(f"stream {self.id}: sha256 of the received bytes does not match")
        self.state = StreamState.ENDED

    def consumed(self, seq: int, now: float) -> m.Ack | None:
        """The consumer took page ``seq``: maybe an ack granting more credit."""
        if seq >= self.expected_seq:
            raise LocalProtocolError(f"page {seq} of stream {self.id} has not arrived")
        self.consumed_seq = max(self.consumed_seq, seq)
        # Ack every page at window 1 (stop-and-wait); otherwise every quarter
        # window, which keeps the pipe full while sending 4x fewer acks.
        if self.consumed_seq - self.acked_seq < ack_every(self.window):
            return None
        self.acked_seq = self.consumed_seq
        self.granted_max = self.consumed_seq + self.window
        if self._probe is None:
            self._probe = (self.granted_max, now, self.consumed_seq)
        return m.Ack(self.id, self.consumed_seq, self.granted_max)

    @property
    def sha256(self) -> bytes | None:
        return self._sha256.digest() if self._sha256 is not None else None


def _valid_matches(matches: list[Any], scanned: int) -> bool:
    """Each match is ``{offset: int, line: int >= 0, text: bin, cut: bool}`` and nothing else,
    with offsets in order, from 0 and below ``scanned``."""
    last = 0
    try:
        for match in matches:  # one pass, no calls per match: hits can hold thousands
            offset = match["offset"]
            line = match["line"]
            if (len(match) != 4 or type(offset) is not int or not last <= offset < scanned
                    or type(line) is not int or line < 0 or type(match["text"]) is not bytes
                    or type(match["cut"]) is not bool):
                return False
            last = offset
    except (KeyError, TypeError):
        return False
    return True


def ack_every(window: int) -> int:
    """The reference ack cadence: every ``max(1, floor(W/4))`` consumed pages."""
    return max(1, window // 4)


class CollectorProtocol:
    """The collector side of one connection.

    Args:
        token: sent in ``hello``.
        agent: a name for logs.
        max_window_bytes: the adaptive window never holds more than this many
            bytes in flight per stream (it bounds the collector's memory).
        initial_window: the adaptive window's first value, in pages (at
            most ``max_window_bytes`` of them).  128 pages of the default
            256 KiB are the 32 MiB cap: a consumer that keeps up fills a
            long fat pipe from the first round trip instead of after two (a
            256 MiB read at 50 ms: 923-944 ms starting at 32 pages, 871-912
            at 64, 788-826 at 128; bench/README.md), as bulk reads of 1 MiB
            pages always did.  Smaller pages start below their cap and grow.
    """

    def __init__(self, *, token: str | None = None, agent: str | None = "pagebridge-py",
                 max_window_bytes: int = 32 * 1024 * 1024, initial_window: int = 128,
                 clock: Callable[[], float] | None = None) -> None:
        self.state = ConnectionState.GREETING
        # Round trips are measured with the shell's clock; without one, time
        # is whatever receive(now=...) says (tests pass it explicitly).
        self._clock = clock
        self.welcome: m.Welcome | None = None
        #: Set when the collector itself must close the connection (the server broke the protocol).
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self._streams: dict[int, CollectorStream] = {}
        self.max_window_bytes = max_window_bytes
        self.initial_window = initial_window
        self._next_stream = 1
        self._next_request = 1
        self._out: list[bytes] = [m.Hello(token, agent).encode()]

    # ------------------------------------------------------------ queries

    def stream(self, sid: int) -> CollectorStream | None:
        """A live stream (None once it ended)."""
        return self._streams.get(sid)

    def window_of(self, sid: int) -> int | None:
        stream = self._streams.get(sid)
        return stream.window if stream is not None else None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def _send(self, message: m.Message) -> None:
        self._out.append(message.encode())

    def _check_usable(self) -> None:
        if self.state is ConnectionState.FAILED:
            raise LocalProtocolError("the connection has failed; no new requests")

    # ------------------------------------------------------------ requests

    def request_list(self, path: str = "") -> int:
        self._check_usable()
        rid = self._next_request
        self._next_request += 1
        self._send(m.List(rid, path))
        return rid

    def request_locate(self, path: str, *, offset: int | None = None, line: int | None = None) -> int:
        """Ask for the line holding byte ``offset``, or the start of line ``line``."""
        self._check_usable()
        if offset is not None and line is not None:
            raise ValueError("give an offset or a line, not both")
        rid = self._next_request
        self._next_request += 1
        self._send(m.Locate(rid, path, offset, line))
        return rid

    def scan(self, path: str, pattern: str, *, regex: bool = False, ignore_case: bool = False,
             offset: int = 0, length: int | None = None, follow: bool = False, window: int = 8,
             max_text: int | None = None, count_only: bool = False,
             line_numbers: bool = True, keep_cr: bool = False) -> int:
        """Start a scan of ``path`` for ``pattern``; matches arrive as :class:`HitsReceived`."""
        self._check_usable()
        welcome = self.welcome
        server_max = welcome.max_window if welcome else MAX_WINDOW
        if not 1 <= window <= server_max:
            raise ValueError(f"window must be between 1 and {server_max}")
        sid = self._next_stream
        self._next_stream += 1
        request = m.Scan(sid, path, pattern, regex, ignore_case, offset, length, follow, window,
                         max_text, count_only, line_numbers, keep_cr)
        self._streams[sid] = CollectorStream(request, auto=False, max_window=window)
        self._send(request)
        return sid

    def open(self, path: str, *, offset: int = 0, length: int | None = None,
             window: int | None = None, page_size: int | None = None,
             if_match: str | None = None, follow: bool = False, text: bool = False,
             sha256: bool = False, integrity: bool = True, compress: bool = False,
             digest: bool = True) -> int:
        """Open a stream; ``window=None`` selects the adaptive window.

        ``compress`` offers the codecs this installation has (zstd, with the
        ``compress`` extra); the server compresses the pages that shrink.
        ``digest=False`` skips verifying ``end.digest`` (optional for a
        collector, docs/protocol.md §4: every byte is covered by its page's
        XXH3-64); this collector verifies it unless told otherwise.
        """
        self._check_usable()
        offer = codecs.available() if compress else None
        if compress and not offer:
            raise ValueError("compression needs the zstandard package: pip install 'pagebridge[compress]'")
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
                         text, sha256, integrity, offer)
        self._streams[sid] = CollectorStream(request, auto=window is None, max_window=max_window,
                                             digest=digest)
        self._send(request)
        return sid

    def consumed(self, sid: int, seq: int, now: float) -> None:
        """The consumer took page ``seq`` of ``sid`` (may queue an ack)."""
        stream = self._streams.get(sid)
        if stream is not None and stream.state is StreamState.OPEN:
            ack = stream.consumed(seq, now)
            if ack is not None:
                self._send(ack)

    def cancel(self, sid: int) -> None:
        """Stop a stream; messages still in flight for it are ignored."""
        stream = self._streams.pop(sid, None)
        if stream is not None:
            stream.state = StreamState.ENDED
            if self.state is not ConnectionState.FAILED:
                self._send(m.Cancel(sid))

    # ------------------------------------------------------------ input

    def receive(self, frame: bytes | bytearray | memoryview, now: float | None = None,
                ) -> list[CollectorEvent]:
        """Handle one binary frame from the server.

        A frame that breaks the protocol fails the connection: the events end
        with :class:`ConnectionFailed` and :attr:`close_code` is set.
        """
        if self.state is ConnectionState.FAILED:
            return []
        if now is None:
            now = self._clock() if self._clock is not None else 0.0
        try:
            message = m.decode(frame)
        except ProtocolError as exc:
            return self.fail(exc)
        if self.state is ConnectionState.GREETING:
            if isinstance(message, m.Welcome):
                if message.version != PROTOCOL_VERSION:
                    return self.fail(ProtocolError(
                        f"the server speaks protocol version {message.version}; this collector "
                        f"speaks {PROTOCOL_VERSION}"))
                self.welcome = message
                self.state = ConnectionState.OPEN
                return [Welcomed(message)]
            if isinstance(message, m.Error) and message.stream is None and message.id is None:
                return self._refused(message)
            return self.fail(ProtocolError(f"expected 'welcome', got {message.TYPE!r}"))
        if isinstance(message, m.Listing):
            return [ListingReceived(message)]
        if isinstance(message, m.Located):
            return [LocatedReceived(message)]
        if isinstance(message, m.Error):
            return self._receive_error(message)
        if isinstance(message, (m.Opened, m.Page, m.Hits, m.Event, m.End)):
            stream = self._streams.get(message.stream)
            if stream is None:
                return []  # a stream we cancelled: its last messages are still in flight
            try:
                return self._receive_stream_message(stream, message, now)
            except StreamError as exc:
                # The stream cannot be trusted any more: drop it, tell the server.
                self.cancel(stream.id)
                return [StreamFailed(stream.id, exc)]
        return self.fail(ProtocolError(f"a server may not send {message.TYPE!r} messages"))

    def receive_text(self) -> list[CollectorEvent]:
        """The server sent a text frame: not part of the protocol."""
        return self.fail(ProtocolError("the server sent a text frame"), CloseCode.UNSUPPORTED_DATA)

    def fail(self, exc: PagebridgeError, close_code: CloseCode | None = CloseCode.PROTOCOL_ERROR,
             ) -> list[CollectorEvent]:
        """Fail the connection: every stream fails with ``exc``; close with ``close_code``."""
        if self.state is ConnectionState.FAILED:
            return []
        self.state = ConnectionState.FAILED
        self.close_code = close_code
        self.close_reason = exc.message[:120]
        events: list[CollectorEvent] = []
        for stream in list(self._streams.values()):
            stream.state = StreamState.ENDED
            events.append(StreamFailed(stream.id, ConnectionClosedError(exc.message)))
        self._streams.clear()
        events.append(ConnectionFailed(exc, close_code))
        return events

    def connection_lost(self, reason: str) -> list[CollectorEvent]:
        """The transport closed: everything still open fails with ConnectionClosedError."""
        return self.fail(ConnectionClosedError(reason), None)

    def _receive_stream_message(self, stream: CollectorStream, message: m.Message,
                                now: float) -> list[CollectorEvent]:
        if isinstance(message, m.Opened):
            stream.receive_opened(message)
            return [StreamOpened(message)]
        if stream.state is StreamState.OPENING:
            raise StreamError(f"{message.TYPE!r} before 'opened' on stream {stream.id}",
                              ErrorCode.BAD_MESSAGE)
        if isinstance(message, m.Page):
            return [PageReceived(stream.receive_page(message, now))]
        if isinstance(message, m.Hits):
            stream.receive_hits(message, now)
            return [HitsReceived(message)]
        if isinstance(message, m.Event):
            stream.receive_event(message)
            return [StreamEvent(message)]
        assert isinstance(message, m.End)
        stream.receive_end(message)
        del self._streams[stream.id]
        return [StreamEnded(message)]

    def _receive_error(self, error: m.Error) -> list[CollectorEvent]:
        exc = stream_error(error.code, error.message)
        if error.stream is not None:
            stream = self._streams.pop(error.stream, None)
            if stream is None:
                return []  # e.g. the confirmation of our own cancel
            stream.state = StreamState.ENDED
            return [StreamFailed(error.stream, exc)]
        if error.id is not None:
            return [RequestFailed(error.id, exc)]
        return self._refused(error)

    def _refused(self, error: m.Error) -> list[CollectorEvent]:
        return self.fail(ProtocolError(error.message, _code(error.code)), None)


def _code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.INTERNAL


__all__ = [
    "CollectorEvent", "CollectorProtocol", "CollectorStream", "ConnectionFailed", "ConnectionState",
    "HitsReceived", "ListingReceived", "LocatedReceived", "PageReceived", "RequestFailed", "StreamEnded", "StreamEvent", "StreamFailed",
    "StreamOpened", "StreamState", "Welcomed", "ack_every",
]
