"""Fuzzing the message decoder: any bytes give a Message or ProtocolError(bad_message), nothing else.

Bounded: PAGEBRIDGE_FUZZ_EXAMPLES (default 3000 per target in CI).
"""

from __future__ import annotations

import os

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core import messages as m
from bridge.errors import ErrorCode, ProtocolError

EXAMPLES = int(os.environ.get("PAGEBRIDGE_FUZZ_EXAMPLES", "3000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
COUNT = {"bytes": 0, "structured": 0}

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(["t", "stream", "path", "offset", "length", "window", "seq", "max", "id",
                               "token", "data", "xxh", "code", "message", "x"])
type_names = st.sampled_from(sorted(m.MESSAGE_TYPES) + ["", "nope"])


def check(frame: bytes) -> None:
    try:
        message = m.decode(frame)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.BAD_MESSAGE and exc.message
    else:
        assert isinstance(message, m.Message)
        assert m.decode(message.encode()) == message  # what decodes, re-encodes the same


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(frame: bytes) -> None:
    """Random bytes: a message or bad_message."""
    COUNT["bytes"] += 1
    check(frame)


@FUZZ
@given(type_name=type_names, fields=st.dictionaries(field_names, values, max_size=8))
def test_fuzz_message_shaped_maps(type_name: str, fields: dict) -> None:
    """Maps that look like messages, with any field values: a message or bad_message."""
    COUNT["structured"] += 1
    check(msgpack.packb({"t": type_name, **fields}, use_bin_type=True))


def teardown_module() -> None:
    print(f"\nfuzz executions: {COUNT}")
