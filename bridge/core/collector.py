"""The collector's side of the protocol: order, credits, integrity, the window.

Sans-I/O like :mod:`bridge.core.pager`: frames in, events out, frames to send
piled up in ``data_to_send()``.
"""

from __future__ import annotations

import dataclasses
import hashlib

import xxhash

from ..errors import (
    ErrorCode,
    IntegrityError,
    PagebridgeError,
    ProtocolError,
    StreamError,
    stream_error,
)
from . import messages as m
from .limits import (
    DEFAULT_PAGE_SIZE,
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
