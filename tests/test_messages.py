"""The message codec: every type round-trips; malformed frames are refused with bad_message."""

from __future__ import annotations

import msgpack
import pytest

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
