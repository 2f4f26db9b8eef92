"""The message codec: every type round-trips; malformed frames are refused with bad_message."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import messages as m
from bridge.errors import ErrorCode, ProtocolError

EXAMPLES = [
    m.Hello("tok", "agent"), m.Hello(),
    m.List(1, "a/b"), m.Open(3, "f", 10, 20, 4, 1024, "etag", True, True, True), m.Open(1, "f"),
    m.Ack(1, 0, 8), m.Cancel(2),
    m.Welcome(1, "pagebridge/0", 262144, 4194304, 256, 64),
    m.Listing(1, "", [{"name": "a", "kind": "file", "size": 1, "mtime": 1.5}]),
    m.Opened(1, "f", 0, 10, 10, 1.5, "e", 4096), m.Page(1, 0, 0, b"data", b"\x00" * 8),
    m.End(1, 1, 4, b"\x01" * 16, b"\x02" * 32), m.Event(1, "rotated", 0, 5, "why"),
    m.Error("not_found", "no such file", stream=1), m.Error("internal", "x", id=4),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(message: m.Message) -> None:
    """decode(encode(x)) == x for every message type."""
    assert m.decode(m.encode(message)) == message


def test_omitted_optional_fields_take_defaults() -> None:
    """Optional fields may be left out of the map and get their documented defaults."""
    frame = msgpack.packb({"t": "open", "stream": 1, "path": "x"})
    assert m.decode(frame) == m.Open(1, "x", 0, None, 8, None, None, False, False, False)


BAD = {
    "garbage": (b"\xc1\xc1", "not valid msgpack"),
    "truncated": (msgpack.packb({"t": "open", "stream": 1, "path": "abc"})[:-2], "not valid msgpack"),
    "not a map": (msgpack.packb([1, 2]), "must be a msgpack map"),
    "no type": (msgpack.packb({"stream": 1}), "no string field 't'"),
    "unknown type": (msgpack.packb({"t": "explode"}), "unknown message type"),
    "unknown field": (msgpack.packb({"t": "cancel", "stream": 1, "x": 1}), "unknown field 'x'"),
    "missing field": (msgpack.packb({"t": "ack", "stream": 1, "seq": 0}), "'max' is missing"),
    "bool for int": (msgpack.packb({"t": "cancel", "stream": True}), "must be int, not bool"),
    "str for int": (msgpack.packb({"t": "cancel", "stream": "1"}), "must be int, not str"),
    "int for str": (msgpack.packb({"t": "list", "id": 1, "path": 5}), "must be str, not int"),
    "str for bin": (msgpack.packb({"t": "page", "stream": 1, "seq": 0, "offset": 0, "data": "x",
                                   "xxh": b"1" * 8}, use_bin_type=True), "must be bytes, not str"),
    "too negative": (msgpack.packb({"t": "cancel", "stream": -5}), "out of range"),
    "billions of items": (b"\xdf\xff\xff\xff\xff", "not valid msgpack"),
    "huge array header": (b"\xdd\x7f\xff\xff\xff", "not valid msgpack"),
    "non-string key": (msgpack.packb({1: 2}), "not valid msgpack"),
    "trailing bytes": (msgpack.packb({"t": "cancel", "stream": 1}) + b"\x00", "not valid msgpack"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_frames_are_refused(name: str) -> None:
    """Each malformed frame raises ProtocolError(bad_message) with a sentence saying what is wrong."""
    frame, words = BAD[name]
    with pytest.raises(ProtocolError) as info:
        m.decode(frame)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert words in info.value.message


# ---------------------------------------------------------------- pages without copies


def _generic(frame: bytes) -> m.Message | str:
    """What the generic decoder makes of a frame (a memoryview skips the fast path), or its refusal."""
    try:
        return m.decode(memoryview(frame))
    except ProtocolError as exc:
        return exc.message


def _fast(frame: bytes) -> m.Message | str:
    try:
        return m.decode(frame)
    except ProtocolError as exc:
        return exc.message


def test_page_frame_is_header_then_data() -> None:
    """An encoded page is page_header(...) followed by the data's own bytes, and valid msgpack."""
    data = bytes(range(256)) * 300
    frame = m.Page(3, 7, 1 << 40, data, b"\x01" * 8).encode()
    header = m.page_header(3, 7, 1 << 40, b"\x01" * 8, len(data))
    assert frame == header + data
    assert len(header) <= m.PAGE_HEADROOM
    assert msgpack.unpackb(frame) == {"t": "page", "stream": 3, "seq": 7, "offset": 1 << 40,
                                      "xxh": b"\x01" * 8, "data": data}


def test_decoded_page_data_is_a_view_of_the_frame() -> None:
    """Decoding a data-last page copies nothing: its data is a read-only view into the frame."""
    frame = m.Page(1, 0, 0, b"abc" * 1000, b"\x00" * 8).encode()
    page = m.decode(frame)
    assert isinstance(page, m.Page) and isinstance(page.data, memoryview)
    assert page.data.obj is frame and page.data.readonly
    assert page.data == b"abc" * 1000


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535, 65536, 300_000])
def test_every_bin_width_round_trips(size: int) -> None:
    """bin8, bin16 and bin32 data headers all decode to the same page."""
    page = m.Page(1, 2, 3, bytes(size), b"\x02" * 8)
    assert m.decode(page.encode()) == page


def test_other_layouts_still_decode() -> None:
    """A page whose data is not last (any valid msgpack map) decodes by the generic path."""
    for order in (["t", "data", "stream", "seq", "offset", "xxh"], ["data", "xxh", "offset", "seq", "stream", "t"]):
        values = {"t": "page", "stream": 1, "seq": 0, "offset": 5, "data": b"hello", "xxh": b"\x00" * 8}
        frame = msgpack.packb({k: values[k] for k in order}, use_bin_type=True)
        assert m.decode(frame) == m.Page(1, 0, 5, b"hello", b"\x00" * 8)


def test_a_data_key_inside_a_value_is_not_taken_for_the_data() -> None:
    """Bytes that look like the data key inside an earlier value do not fool the fast path."""
    decoy = b"\xa4data\xc4\x02zz"  # a "data" key and a 2-byte bin, inside the xxh
    frame = msgpack.packb({"t": "page", "stream": 1, "seq": 0, "offset": 0, "xxh": decoy, "data": b"zz"},
                          use_bin_type=True)
    page = m.decode(frame)
    assert isinstance(page, m.Page) and page.xxh == decoy and page.data == b"zz"
    # The decoy alone at the end, so that its bin ends the frame: the map is then one entry short.
    tricky = msgpack.packb({"t": "page", "stream": 1, "seq": 0, "offset": 0, "xxh": b"\xa4data\xc4\x00"},
                           use_bin_type=True)
    assert "'data' is missing" in _fast(tricky)


@given(stream=st.integers(0, 2**63 - 1), seq=st.integers(0, 2**63 - 1), offset=st.integers(0, 2**63 - 1),
       xxh=st.binary(max_size=12), data=st.binary(max_size=300), cut=st.integers(0, 400),
       flip=st.tuples(st.integers(0, 400), st.integers(0, 255)), extra=st.binary(min_size=1, max_size=3))
@settings(max_examples=400, deadline=None)
def test_fast_path_agrees_with_the_generic_decoder(stream: int, seq: int, offset: int, xxh: bytes,
                                                   data: bytes, cut: int, flip: tuple[int, int],
                                                   extra: bytes) -> None:
    """On valid, truncated, extended and corrupted page frames, the fast path decodes exactly as msgpack does."""
    frame = m.Page(stream, seq, offset, data, xxh).encode()
    broken = bytearray(frame)
    if flip[0] < len(broken):
        broken[flip[0]] ^= flip[1]
    for candidate in (frame, frame[:cut], frame + extra, bytes(broken)):
        assert _fast(candidate) == _generic(candidate)


def test_a_bytearray_frame_is_copied_not_lent() -> None:
    """A mutable frame decodes to bytes: the caller may reuse or resize its buffer afterwards."""
    buffer = bytearray(m.Page(1, 0, 0, b"abc" * 100, b"\x00" * 8).encode())
    page = m.decode(buffer)
    assert isinstance(page, m.Page) and isinstance(page.data, bytes)
    buffer.clear()
    assert page.data == b"abc" * 100
