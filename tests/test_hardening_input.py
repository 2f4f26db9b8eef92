"""Bad input, table-driven: each case gets its specific error or close code, and afterwards a
well-behaved collector on the same server still completes a verified transfer."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import msgpack
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from bridge.aio.client import connect
from bridge.core import SUBPROTOCOL
from bridge.core import messages as m

HELLO = m.Hello().encode()
FILE = b"".join(b"%06d\n" % i for i in range(20000))


def pack(body: object) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def open_(**fields) -> bytes:
    return pack({"t": "open", "stream": 1, "path": "data.txt", **fields})


# (name, frames after hello (or None: no hello), expected)
# expected: ("error", code) -> an error message, connection stays open;
#           ("close", close_code, code or None) -> an error (if code) and the connection closes.
CASES = [
    ("text frame", ["hello?"], ("close", 1003, "bad_message")),
    ("garbage msgpack", [b"\xc1\xc1\xc1"], ("close", 1002, "bad_message")),
    ("truncated msgpack", [open_()[:-3]], ("close", 1002, "bad_message")),
    ("not a map", [pack([1, 2, 3])], ("close", 1002, "bad_message")),
    ("map without type", [pack({"stream": 1})], ("close", 1002, "bad_message")),
    ("billions of items announced", [b"\xdf\xff\xff\xff\xff"], ("close", 1002, "bad_message")),
    ("huge array announced", [b"\xdd\x7f\xff\xff\xff"], ("close", 1002, "bad_message")),
    ("deeply nested", [b"\x91" * 5000 + b"\xc0"], ("close", 1002, "bad_message")),
    ("frame over the size limit", [pack({"t": "list", "id": 1, "path": "x" * 100_000})], ("close", 1009, None)),
    ("unknown type", [pack({"t": "explode"})], ("close", 1002, "bad_message")),
    ("server-only type", [pack({"t": "page", "stream": 1, "seq": 0, "offset": 0, "data": b"x", "xxh": b"1" * 8})],
     ("close", 1002, "bad_message")),
    ("second hello", [HELLO], ("close", 1002, "bad_message")),
    ("open: missing path", [pack({"t": "open", "stream": 1})], ("close", 1002, "bad_message")),
    ("open: extra field", [open_(color="red")], ("close", 1002, "bad_message")),
    ("open: path not a string", [open_(path=7)], ("close", 1002, "bad_message")),
    ("open: stream is a bool", [open_(stream=True)], ("close", 1002, "bad_message")),
    ("open: stream is a float", [open_(stream=1.5)], ("close", 1002, "bad_message")),
    ("open: number beyond int64", [open_(offset=2**64 - 1)], ("close", 1002, "bad_message")),
    ("open: very negative offset", [open_(offset=-10)], ("close", 1002, "bad_message")),
    ("open: offset -1", [open_(offset=-1)], ("error", "bad_request")),
    ("open: offset beyond the end", [open_(offset=2**62)], ("error", "bad_request")),
    ("open: window 0", [open_(window=0)], ("error", "bad_request")),
    ("open: window too large", [open_(window=10**9)], ("error", "bad_request")),
    ("open: page size 0", [open_(page_size=0)], ("error", "bad_request")),
    ("open: page size too large", [open_(page_size=2**40)], ("error", "bad_request")),
    ("open: stream id 0", [open_(stream=0)], ("error", "bad_request")),
    ("open: stream ids must increase", [open_(stream=5), open_(stream=3)], ("error", "bad_request")),
    ("open: id of an open stream", [open_(stream=2, window=1), open_(stream=2)], ("error", "stream_in_use")),
    ("open: too many streams", [open_(stream=i, window=1) for i in range(1, 66)], ("error", "too_many_streams")),
    ("open: missing file", [open_(path="nope")], ("error", "not_found")),
    ("open: traversal", [open_(path="../../etc/passwd")], ("error", "forbidden")),
    ("open: NUL in path", [open_(path="data.txt\x00")], ("error", "bad_request")),
    ("open: if_match mismatch", [open_(if_match="0-0-0")], ("error", "file_changed")),
    ("follow: traversal", [open_(path="../../etc/passwd", follow=True)], ("error", "forbidden")),
    ("follow: missing file", [open_(path="nope", follow=True)], ("error", "not_found")),
    ("follow: a folder", [open_(path="sub", follow=True)], ("error", "not_a_file")),
    ("follow: offset beyond the end", [open_(offset=2**62, follow=True)], ("error", "bad_request")),
    ("follow: if_match mismatch", [open_(follow=True, if_match="0-0-0")], ("error", "file_changed")),
    ("follow: not a bool", [open_(follow="yes")], ("close", 1002, "bad_message")),
    ("ack: missing max", [pack({"t": "ack", "stream": 1, "seq": 0})], ("close", 1002, "bad_message")),
    ("ack: wrong type", [pack({"t": "ack", "stream": "1", "seq": 0, "max": 1})], ("close", 1002, "bad_message")),
    ("ack: unknown stream", [pack({"t": "ack", "stream": 9, "seq": 0, "max": 1})], ("error", "unknown_stream")),
    ("ack: page never sent", [open_(window=1), pack({"t": "ack", "stream": 1, "seq": 50, "max": 51})],
     ("error", "credit_violation")),
    ("ack: credit overflow", [open_(window=1), pack({"t": "ack", "stream": 1, "seq": 0, "max": 2**62})],
     ("error", "credit_violation")),
    ("ack: negative seq", [open_(window=1), pack({"t": "ack", "stream": 1, "seq": -1, "max": 3})],
     ("error", "bad_request")),
    ("cancel: unknown stream", [pack({"t": "cancel", "stream": 77})], ("error", "unknown_stream")),
    ("cancel: extra field", [pack({"t": "cancel", "stream": 1, "why": 1})], ("close", 1002, "bad_message")),
    ("list: a file", [pack({"t": "list", "id": 1, "path": "data.txt"})], ("error", "not_a_directory")),
    ("list: traversal", [pack({"t": "list", "id": 1, "path": ".."})], ("error", "forbidden")),
    ("list: id not an int", [pack({"t": "list", "id": "x", "path": ""})], ("close", 1002, "bad_message")),
]
BEFORE_HELLO = [
    ("list before hello", [pack({"t": "list", "id": 1, "path": ""})], ("close", 1002, "bad_message")),
    ("open before hello", [open_()], ("close", 1002, "bad_message")),
    ("garbage before hello", [b"\x00\x01"], ("close", 1002, "bad_message")),
]


async def well_behaved_transfer(url: str) -> None:
    async with connect(url) as session:
        data = await asyncio.wait_for(session.get_all_pages("data.txt", window=4), 10)
    assert hashlib.sha256(data).digest() == hashlib.sha256(FILE).digest()


async def run_case(url: str, frames: list, hello: bool) -> tuple[list[m.Message], int | None]:
    """Send the frames; collect what the server answers until it closes or goes quiet."""
    answers: list[m.Message] = []
    async with ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as ws:
        if hello:
            await ws.send(HELLO)
            assert isinstance(m.decode(await ws.recv()), m.Welcome)
        for frame in frames:
            await ws.send(frame)
        try:
            while True:
                frame = await asyncio.wait_for(ws.recv(), 1.0)
                answers.append(m.decode(frame))
        except (TimeoutError, ConnectionClosed):
            pass
        await asyncio.sleep(0)
        code = ws.close_code
    return answers, code


@pytest.fixture
async def served(root: Path, start_server):
    (root / "data.txt").write_bytes(FILE)
    (root / "sub").mkdir()
    return await start_server(root)


@pytest.mark.parametrize("name, frames, expected", CASES + BEFORE_HELLO, ids=[c[0] for c in CASES + BEFORE_HELLO])
async def test_bad_input(served, name: str, frames: list, expected: tuple) -> None:
    """The server answers each bad input with its specific code, and keeps serving others."""
    answers, close_code = await run_case(served.ws_url, frames, hello=(name, frames, expected) in CASES)
    errors = [a for a in answers if isinstance(a, m.Error)]
    if expected[0] == "error":
        assert close_code is None, f"connection closed ({close_code}) for a stream-level error"
        assert expected[1] in [e.code for e in errors], answers
        assert all(e.message for e in errors)
    else:
        _, code, error_code = expected
        assert close_code == code
        if error_code is not None:
            assert [e.code for e in errors][-1:] == [error_code]
            assert errors[-1].message
    await well_behaved_transfer(served.ws_url)


async def test_wrong_token_closes_with_policy_violation(root: Path, start_server) -> None:
    """A wrong token gets 'unauthorized' and close 1008; the right one then works."""
    (root / "data.txt").write_bytes(FILE)
    server = await start_server(root, token="s3cret")
    async with ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as ws:
        await ws.send(m.Hello(token="guess").encode())
        error = m.decode(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (error.code, ws.close_code) == ("unauthorized", 1008)
    async with connect(server.ws_url, token="s3cret") as session:
        assert await session.get_all_pages("data.txt") == FILE


async def test_missing_subprotocol_is_refused(served) -> None:
    """A WebSocket handshake that does not offer pagebridge.v1 is refused with HTTP 400."""
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(served.ws_url):
            pass
    assert info.value.response.status_code == 400
    await well_behaved_transfer(served.ws_url)


async def test_no_hello_in_time_is_dropped(root: Path, start_server) -> None:
    """A connection that never says hello is closed with 1008 after the handshake timeout."""
    server = await start_server(root, open_timeout=0.5)
    async with ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as ws:
        error = m.decode(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert (error.code, ws.close_code) == ("unauthorized", 1008)
