"""Properties of the sans-I/O core: whatever the collector's messages do (duplicated, reordered,
cancels; WebSocket itself never drops or corrupts frames), the consumer gets exactly the bytes or a clear protocol error."""

from __future__ import annotations

import random

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core import (
    CollectorProtocol,
    OpenRequested,
    PageReceived,
    PagerProtocol,
    StreamEnded,
    StreamFailed,
    StreamState,
)
from bridge.core import messages as m

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def greeted_pair() -> tuple[PagerProtocol, CollectorProtocol]:
    """A pager and a collector past hello/welcome."""
    pager = PagerProtocol()
    collector = CollectorProtocol()
    for frame in collector.data_to_send():
        pager.receive(frame)
    for frame in pager.data_to_send():
        collector.receive(frame)
    return pager, collector


def run_transfer(data: bytes, window: int | None, page_size: int, ops: list[tuple[str, int]]) -> tuple[str, bytes]:
    """Drive a pair through one stream while mangling collector->pager traffic per `ops`.

    Returns ("ok", bytes) on a verified end, ("cancelled", b"") when our cancel
    stopped it, ("error", b"") when the stream failed.
    """
    pager, collector = greeted_pair()
    sid = collector.open("f", window=window, page_size=page_size)
    backlog: list[bytes] = []  # collector frames held back (reordering, duplication)
    received = bytearray()
    pos = 0
    rng = random.Random(len(ops))
    op_iter = iter(ops)
    for step in range(10_000):
        for frame in collector.data_to_send():
            backlog.append(frame)
        op, arg = next(op_iter, ("deliver", 0))
        acks = [f for f in backlog if m.decode(f).TYPE == "ack"]
        if op == "duplicate" and acks:
            backlog.append(acks[arg % len(acks)])
        elif op == "reorder" and len(backlog) > 1:
            rng.shuffle(backlog)
        elif op == "cancel":
            collector.cancel(sid)
        if op == "hold":
            continue  # keep the frames back: later ones will overtake them after a reorder
        deliver, backlog = backlog, []
        events = []
        for frame in deliver:
            events += pager.receive(frame)
        for event in events:
            if isinstance(event, OpenRequested):
                pager.accept_open(sid, path="f", size=len(data), length=len(data), mtime=None, etag="e")
        if pager.stream_state(sid) is StreamState.OPEN:
            while pager.credits(sid) and pos < len(data):
                pager.send_page(sid, data[pos:pos + page_size])
                pos += page_size
            if pos >= len(data):
                pager.end_stream(sid)
        for frame in pager.data_to_send():
            for event in collector.receive(frame):
                if isinstance(event, PageReceived):
                    received += event.page.data
                    collector.consumed(sid, event.page.seq, step * 0.001)
                elif isinstance(event, StreamEnded):
                    return "ok", bytes(received)
                elif isinstance(event, StreamFailed):
                    return "error", b""
        if collector.stream(sid) is None:
            return "cancelled", b""  # cancelled by us
    raise AssertionError("no progress")


OPS = st.lists(st.tuples(st.sampled_from(["deliver", "hold", "hold", "duplicate", "reorder", "cancel"]),
                         st.integers(0, 100)), max_size=60)


@SETTINGS
@given(data=st.binary(max_size=5000), window=st.one_of(st.none(), st.integers(1, 16)),
       page_size=st.integers(1, 700), ops=OPS)
def test_any_ack_sequence_gives_exact_bytes_or_clear_error(data, window, page_size, ops) -> None:
    """Duplicated and reordered acks never fail a stream: exact bytes, unless cancelled first."""
    outcome, got = run_transfer(data, window, page_size, ops)
    if outcome == "ok":
        assert got == data
    else:
        # Only our own cancel may stop the stream: duplicates and reorders never do.
        assert outcome == "cancelled"
        assert "cancel" in [op for op, _ in ops]


@SETTINGS
@given(data=st.binary(min_size=1, max_size=3000), flip=st.integers(0, 10_000), page_size=st.integers(1, 500))
def test_any_corruption_is_detected(data, flip, page_size) -> None:
    """A single flipped bit in any page never yields wrong bytes: the stream fails with integrity."""
    pager, collector = greeted_pair()
    sid = collector.open("f", window=256, page_size=page_size)
    for frame in collector.data_to_send():
        pager.receive(frame)
    pager.accept_open(sid, path="f", size=len(data), length=len(data), mtime=None, etag=None)
    for pos in range(0, len(data), page_size):
        pager.send_page(sid, data[pos:pos + page_size])
    pager.end_stream(sid)
    frames = pager.data_to_send()
    pages = [i for i, f in enumerate(frames) if m.decode(f).TYPE == "page"]
    target = pages[flip % len(pages)]
    body = msgpack.unpackb(frames[target])
    corrupted = bytearray(body["data"])
    corrupted[flip % len(corrupted)] ^= 1 << (flip % 8)
    body["data"] = bytes(corrupted)
    frames[target] = msgpack.packb(body, use_bin_type=True)
    got = bytearray()
    outcome = None
    for frame in frames:
        for event in collector.receive(frame):
            if isinstance(event, PageReceived):
                got += event.page.data
            elif isinstance(event, StreamFailed):
                outcome = event.error.code.value
            elif isinstance(event, StreamEnded):
                outcome = "ended"
    assert outcome == "integrity"
