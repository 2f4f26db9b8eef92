"""The sans-I/O core, pager and collector paired in memory: no sockets, no event loop."""

from __future__ import annotations

import hashlib

import msgpack
import pytest
import xxhash

from bridge.core import (
    CloseConnection,
    CollectorProtocol,
    ConnectionState,
    CreditGranted,
    HelloReceived,
    ListRequested,
    OpenRequested,
    PageReceived,
    PagerProtocol,
    StreamClosed,
    StreamEnded,
    StreamFailed,
    StreamOpened,
    StreamState,
    Welcomed,
)
from bridge.core import messages as m
from bridge.core.limits import page_check
from bridge.errors import CloseCode, ErrorCode, IntegrityError, LocalProtocolError


class Pair:
    """A collector and a pager wired back to back; the test plays the I/O layer."""

    def __init__(self, token: str | None = None, collector_token: str | None = None, **limits):
        self.pager = PagerProtocol(token=token, **limits)
        self.collector = CollectorProtocol(token=collector_token)
        self.pager_events: list = []
        self.collector_events: list = []

    def to_pager(self) -> list:
        events = []
        for frame in self.collector.data_to_send():
            events += self.pager.receive(frame)
        self.pager_events += events
        return events

    def to_collector(self, now: float = 0.0) -> list:
        events = []
        for frame in self.pager.data_to_send():
            events += self.collector.receive(frame, now)
        self.collector_events += events
        return events

    def handshake(self) -> None:
        assert isinstance(self.to_pager()[0], HelloReceived)
        assert isinstance(self.to_collector()[0], Welcomed)

    def open(self, data: bytes, **options) -> int:
        sid = self.collector.open("f", **options)
        (event,) = self.to_pager()
        assert isinstance(event, OpenRequested)
        self.pager.accept_open(sid, path="f", size=len(data), length=len(data), mtime=None, etag="e1")
        self.to_collector()
        return sid

    def page_all(self, sid: int, data: bytes) -> bytes:
        """Drive one stream to its end the way the asyncio layers do; return what the consumer got."""
        received = bytearray()
        pos = 0
        page_size = self.pager.page_size_of(sid)
        done = False
        while not done:
            while self.pager.credits(sid) and pos < len(data):
                self.pager.send_page(sid, data[pos:pos + page_size])
                pos += page_size
            if pos >= len(data) and self.pager.stream_state(sid) is StreamState.OPEN:
                self.pager.end_stream(sid)
            progressed = False
            for event in self.to_collector():
                if isinstance(event, PageReceived):
                    received += event.page.data
                    self.collector.consumed(sid, event.page.seq, 0.0)
                    progressed = True
                elif isinstance(event, StreamEnded):
                    done = True
                elif isinstance(event, StreamFailed):
                    raise event.error
            self.to_pager()
            assert progressed or done, "the pair stalled: no credit and no end"
        return bytes(received)


@pytest.mark.parametrize("window", [1, 4, 64])
@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4096 * 5, 4096 * 5 + 1])
def test_pair_delivers_exact_bytes(window: int, size: int) -> None:
    """Every size (empty, one byte, exact multiples, remainders) arrives identical at windows 1, 4, 64."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    pair = Pair()
    pair.handshake()
    sid = pair.open(data, window=window, page_size=4096)
    assert pair.page_all(sid, data) == data
    end = [e for e in pair.collector_events if isinstance(e, StreamEnded)][0].end
    assert end.length == size
    assert end.pages == -(-size // 4096)
    assert end.digest == xxhash.xxh3_128_digest(data)


def test_window_one_is_stop_and_wait() -> None:
    """With window 1 the pager may send exactly one page, and each ack releases exactly one more."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"x" * 10, window=1, page_size=2)
    assert pair.pager.credits(sid) == 1
    pair.pager.send_page(sid, b"xx")
    assert pair.pager.credits(sid) == 0
    (page,) = pair.to_collector()
    assert pair.to_pager() == []  # received but not consumed: no ack yet
    pair.collector.consumed(sid, page.page.seq, 0.0)
    assert pair.to_pager() == [CreditGranted(sid)]
    assert pair.pager.credits(sid) == 1


def test_acks_are_coalesced_to_a_quarter_window() -> None:
    """With window 8 the collector acks every 2 consumed pages, granting seq + 8."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"x" * 100, window=8, page_size=1)
    for _ in range(8):
        pair.pager.send_page(sid, b"x")
    pages = [e.page for e in pair.to_collector()]
    pair.collector.consumed(sid, pages[0].seq, 0.0)
    assert pair.collector.data_to_send() == []
    pair.collector.consumed(sid, pages[1].seq, 0.0)
    (frame,) = pair.collector.data_to_send()
    assert m.decode(frame) == m.Ack(sid, 1, 9)


def test_adaptive_window_grows_when_consumer_keeps_up() -> None:
    """An auto window grows per round trip in which half a window was consumed, up to its cap."""
    pair = Pair()
    pair.handshake()
    sid = pair.collector.open("f", page_size=1024)  # window=None: adaptive
    pair.to_pager()
    pair.pager.accept_open(sid, path="f", size=None, length=None, mtime=None, etag=None)
    pair.to_collector()
    stream = pair.collector.stream(sid)
    assert stream is not None and stream.window == 128
    now = 0.0
    for _ in range(200):
        while pair.pager.credits(sid):
            pair.pager.send_page(sid, b"y" * 1024)
        now += 0.001
        for event in pair.to_collector(now):
            pair.collector.consumed(sid, event.page.seq, now)
        pair.to_pager()
    assert stream.window == stream.max_window == 256  # 32 MiB / 1 KiB exceeds the server's 256


def test_adaptive_window_stays_small_for_slow_consumer() -> None:
    """A consumer that takes one page per round trip never grows the window."""
    pair = Pair()
    pair.handshake()
    sid = pair.collector.open("f", page_size=1024)
    pair.to_pager()
    pair.pager.accept_open(sid, path="f", size=None, length=None, mtime=None, etag=None)
    pair.to_collector()
    for _ in range(128):
        pair.pager.send_page(sid, b"z" * 1024)
    waiting = [e.page for e in pair.to_collector()]
    consumed = 0
    for i in range(200):  # one page per round trip: never half a window
        page = waiting.pop(0)
        pair.collector.consumed(sid, page.seq, float(i))
        consumed += 1
        pair.to_pager()
        while pair.pager.credits(sid):
            pair.pager.send_page(sid, b"z" * 1024)
        waiting += [e.page for e in pair.to_collector(float(i) + 0.5)]
    assert consumed == 200
    assert pair.collector.window_of(sid) == 128  # the initial window, never grown


def test_two_streams_interleave_independently() -> None:
    """Pages of two streams on one connection interleave and each arrives intact."""
    pair = Pair()
    pair.handshake()
    a = pair.open(b"A" * 30, window=2, page_size=10)
    b = pair.open(b"B" * 30, window=2, page_size=10)
    pair.pager.send_page(a, b"A" * 10)
    pair.pager.send_page(b, b"B" * 10)
    pair.pager.send_page(a, b"A" * 10)
    events = pair.to_collector()
    assert [(e.page.stream, e.page.seq) for e in events] == [(a, 0), (b, 0), (a, 1)]


def test_corrupted_page_is_detected_and_stream_cancelled() -> None:
    """A page whose data does not match its checksum fails only that stream, with a cancel sent."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"hello world", window=4)
    pair.pager.send_page(sid, b"hello world")
    (frame,) = pair.pager.data_to_send()
    body = msgpack.unpackb(frame)
    body["data"] = b"hellO world"
    (event,) = pair.collector.receive(msgpack.packb(body))
    assert isinstance(event, StreamFailed)
    assert isinstance(event.error, IntegrityError)
    assert event.error.code is ErrorCode.INTEGRITY
    events = pair.to_pager()
    assert events == [StreamClosed(sid, events[0].error)]
    assert events[0].error.code is ErrorCode.CANCELLED


def test_wrong_end_digest_is_detected() -> None:
    """An end whose digest differs from the bytes received raises an integrity failure."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"abc", window=4)
    pair.pager.send_page(sid, b"abc")
    pair.to_collector()
    forged = m.End(sid, 1, 3, xxhash.xxh3_128_digest(b"abd"))
    (event,) = pair.collector.receive(forged.encode())
    assert isinstance(event, StreamFailed) and event.error.code is ErrorCode.INTEGRITY


def test_sha256_is_sent_and_verified_when_asked() -> None:
    """open(sha256=True) makes end carry the stream's sha256, which the collector checks."""
    pair = Pair()
    pair.handshake()
    data = b"q" * 5000
    sid = pair.open(data, window=4, page_size=1000, sha256=True)
    assert pair.page_all(sid, data) == data
    end = [e for e in pair.collector_events if isinstance(e, StreamEnded)][0].end
    assert end.sha256 == hashlib.sha256(data).digest()


def test_duplicate_page_fails_the_stream() -> None:
    """A page delivered twice is a duplicate: the stream fails with bad_message."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"abcd", window=4, page_size=2)
    pair.pager.send_page(sid, b"ab")
    (frame,) = pair.pager.data_to_send()
    pair.collector.receive(frame)
    (event,) = pair.collector.receive(frame)
    assert isinstance(event, StreamFailed) and event.error.code is ErrorCode.BAD_MESSAGE
    assert "duplicate" in event.error.message


def test_ack_for_page_never_sent_is_a_credit_violation() -> None:
    """The pager ends a stream whose collector acks a page that was never sent."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"abcd", window=2, page_size=2)
    (event,) = pair.pager.receive(m.Ack(sid, 5, 7).encode())
    assert isinstance(event, StreamClosed) and event.error.code is ErrorCode.CREDIT_VIOLATION
    error = m.decode(pair.pager.data_to_send()[-1])
    assert error == m.Error("credit_violation", error.message, stream=sid)


def test_stale_and_duplicate_acks_change_nothing() -> None:
    """Acks are absolute: a lower or repeated max never takes credit back or adds any."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"x" * 10, window=2, page_size=1)
    pair.pager.send_page(sid, b"x")
    pair.pager.send_page(sid, b"x")
    assert pair.pager.receive(m.Ack(sid, 1, 3).encode()) == [CreditGranted(sid)]
    assert pair.pager.receive(m.Ack(sid, 1, 3).encode()) == []
    assert pair.pager.receive(m.Ack(sid, 0, 2).encode()) == []
    assert pair.pager.credits(sid) == 2


def test_ack_with_older_seq_does_not_raise_max() -> None:
    """An ack older (by seq) than one applied is stale even if its max is higher: nothing changes."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"x" * 20, window=6, page_size=1)
    for _ in range(6):
        pair.pager.send_page(sid, b"x")
    assert len(pair.pager.data_to_send()) == 6
    assert pair.pager.receive(m.Ack(sid, 1, 5).encode()) == []  # max 5 was granted by window 6
    assert pair.pager.receive(m.Ack(sid, 0, 9).encode()) == []  # stale: seq 0 < 1
    assert pair.pager.credits(sid) == 0
    assert pair.pager.data_to_send() == []
    assert pair.pager.receive(m.Ack(sid, 1, 7).encode()) == [CreditGranted(sid)]  # same seq may raise max
    assert pair.pager.credits(sid) == 2


def test_end_takes_no_credit() -> None:
    """A stream whose credit is used up can still end: end is not a page."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"ab", window=1, page_size=2)
    pair.pager.send_page(sid, b"ab")
    assert pair.pager.credits(sid) == 0
    stats = pair.pager.end_stream(sid)
    assert (stats.pages, stats.bytes) == (1, 2)
    events = pair.to_collector()
    assert [type(e) for e in events] == [PageReceived, StreamEnded]


def test_negative_list_id_is_refused() -> None:
    """list with id -1 is a bad_request answered to that id, not a listing."""
    pair = Pair()
    pair.handshake()
    assert pair.pager.receive(m.List(-1, "").encode()) == []
    error = m.decode(pair.pager.data_to_send()[0])
    assert (error.code, error.id) == ("bad_request", -1)


def test_failed_connection_processes_nothing_more() -> None:
    """After a protocol error the pager ignores every later frame; its close code is set once."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"abc", window=1)
    events = pair.pager.receive(b"\xc1")  # never valid msgpack
    assert [type(e) for e in events] == [StreamClosed, CloseConnection]
    assert events[0].stream == sid
    assert pair.pager.close_code == CloseCode.PROTOCOL_ERROR
    assert pair.pager.state is ConnectionState.FAILED
    assert [m.decode(f).code for f in pair.pager.data_to_send()] == ["bad_message"]
    assert pair.pager.receive(m.List(1, "").encode()) == []
    assert pair.pager.data_to_send() == []
    with pytest.raises(LocalProtocolError):
        pair.pager.send_page(sid, b"a")


def test_local_misuse_raises_and_sends_nothing() -> None:
    """A page without credit, or on an unknown stream, is the caller's bug: raised, never sent."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"ab", window=1, page_size=1)
    pair.pager.send_page(sid, b"a")
    pair.pager.data_to_send()
    with pytest.raises(LocalProtocolError):
        pair.pager.send_page(sid, b"b")
    with pytest.raises(LocalProtocolError):
        pair.pager.end_stream(99)
    assert pair.pager.data_to_send() == []


def test_internal_failure_sends_no_details() -> None:
    """fail_stream with internal sends a generic sentence, never the caller's text."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"ab", window=1)
    pair.pager.fail_stream(sid, ErrorCode.INTERNAL, "Traceback: /srv/secret/path.py line 3")
    error = m.decode(pair.pager.data_to_send()[0])
    assert error.code == "internal" and "/srv" not in error.message
    assert pair.pager.fail_stream(sid, ErrorCode.IO_ERROR, "again") is None  # ended: left alone


def test_token_is_required_when_set() -> None:
    """A wrong token gets an unauthorized error and a connection-level ProtocolError."""
    pair = Pair(token="s3cret", collector_token="guess")
    assert pair.to_pager() == [CloseConnection(CloseCode.POLICY_VIOLATION, "a valid token is required")]
    (frame,) = pair.pager.data_to_send()
    assert m.decode(frame) == m.Error("unauthorized", "a valid token is required")


def test_messages_before_hello_are_refused() -> None:
    """Anything but hello as the first message closes the connection with bad_message."""
    pager = PagerProtocol()
    (event,) = pager.receive(m.List(1, "").encode())
    assert event == CloseConnection(CloseCode.PROTOCOL_ERROR, "the first message must be 'hello', not 'list'")
    assert m.decode(pager.data_to_send()[0]).code == "bad_message"


def test_open_limits_are_enforced_per_stream() -> None:
    """Too many streams and a reused id are refused for that stream only."""
    pair = Pair(max_streams=1)
    pair.handshake()
    first = pair.collector.open("a")
    second = pair.collector.open("b")
    events = pair.to_pager()
    assert [type(e) for e in events] == [OpenRequested]
    error = m.decode(pair.pager.data_to_send()[0])
    assert (error.code, error.stream) == ("too_many_streams", second)
    assert pair.pager.stream_state(first) is StreamState.OPENING
    assert pair.pager.receive(m.Open(first, "c").encode()) == []
    assert m.decode(pair.pager.data_to_send()[0]).code == "stream_in_use"


def test_list_request_round_trip() -> None:
    """A list request becomes ListRequested; its answer reaches the collector by id."""
    pair = Pair()
    pair.handshake()
    rid = pair.collector.request_list("docs")
    assert pair.to_pager() == [ListRequested(rid, "docs")]
    pair.pager.answer_list(rid, "docs", [{"name": "a", "kind": "file", "size": 1, "mtime": 0.0}])
    (event,) = pair.to_collector()
    assert event.listing.entries[0]["name"] == "a"


def test_cancel_confirms_and_ignores_late_messages() -> None:
    """Cancel ends the stream on both sides; late acks for it are ignored, not errors."""
    pair = Pair()
    pair.handshake()
    sid = pair.open(b"abc", window=1)
    pair.collector.cancel(sid)
    (event,) = pair.to_pager()
    assert isinstance(event, StreamClosed) and event.error.code is ErrorCode.CANCELLED
    assert pair.pager.receive(m.Ack(sid, 0, 1).encode()) == []
    frames = pair.pager.data_to_send()
    assert [m.decode(f).code for f in frames] == ["cancelled"]  # the late ack added nothing
    assert [pair.collector.receive(f) for f in frames] == [[]]  # the confirmation is swallowed


def test_ack_for_never_opened_stream_is_unknown_stream() -> None:
    """An ack naming a stream id above any opened gets unknown_stream."""
    pair = Pair()
    pair.handshake()
    assert pair.pager.receive(m.Ack(99, 0, 1).encode()) == []
    assert m.decode(pair.pager.data_to_send()[0]).code == "unknown_stream"


def test_stream_opened_event_carries_etag() -> None:
    """opened reaches the collector with the etag and the length."""
    pair = Pair()
    pair.handshake()
    pair.open(b"abc", window=1)
    opened = [e for e in pair.collector_events if isinstance(e, StreamOpened)][0].opened
    assert (opened.etag, opened.length, opened.size) == ("e1", 3, 3)


def test_integrity_off_sends_empty_checksums_and_still_delivers() -> None:
    """open(integrity=False): empty xxh and digest, no checks, exact bytes (the benchmark's control)."""
    pair = Pair()
    pair.handshake()
    data = bytes(range(256)) * 40
    sid = pair.open(data, window=4, page_size=1000, integrity=False)
    assert pair.page_all(sid, data) == data
    end = [e for e in pair.collector_events if isinstance(e, StreamEnded)][0].end
    assert end.digest == b""
    other = pair.open(data, window=1, page_size=1000, integrity=False)
    pair.pager.send_page(other, data[:1000])
    (frame,) = pair.pager.data_to_send()
    assert m.decode(frame).xxh == b""


def test_a_page_with_room_before_it_is_framed_in_place() -> None:
    """send_page(spaced=...) writes the header into the room: the frame is a view of the buffer, same bytes."""
    data = bytes(range(256)) * 64
    pair = Pair()
    pair.handshake()
    sid = pair.open(data * 2, window=4, page_size=len(data))
    buffer = bytearray(m.PAGE_HEADROOM) + bytearray(data)
    pair.pager.send_page(sid, memoryview(buffer)[m.PAGE_HEADROOM:], spaced=memoryview(buffer))
    pair.pager.send_page(sid, data)  # no room: joined as before
    spaced_frame, joined_frame = pair.pager.data_to_send()
    assert isinstance(spaced_frame, memoryview) and spaced_frame.obj is buffer
    assert bytes(spaced_frame) == m.Page(sid, 0, 0, data, page_check(data)).encode()
    assert isinstance(joined_frame, bytes)
    events = pair.collector.receive(bytes(spaced_frame)) + pair.collector.receive(joined_frame)
    assert [bytes(e.page.data) for e in events if isinstance(e, PageReceived)] == [data, data]
    # Too little room: the page is joined instead.
    small = bytearray(8) + bytearray(data)
    sid2 = pair.open(data, window=1, page_size=len(data))
    pair.pager.send_page(sid2, memoryview(small)[8:], spaced=memoryview(small))
    (frame,) = pair.pager.data_to_send()
    assert isinstance(frame, bytes) and small[:8] == bytearray(8)
