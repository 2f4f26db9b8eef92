"""The shared conformance vectors (tests/vectors/) replayed on the Python core.

Collector vectors run on :class:`bridge.core.CollectorProtocol`, pager vectors
on :class:`bridge.core.PagerProtocol`, with no sockets: frames in, events and
frames out, as tests/vectors/README.md describes.  Node replays the same
collector vectors on web/collector-core.js (web/test/vectors.test.js).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
import xxhash

from bridge.core import CollectorProtocol, PagerProtocol, close_code_for
from bridge.core import messages as m
from bridge.errors import PagebridgeError, ProtocolError

VECTORS = Path(__file__).resolve().parent / "vectors"
SCHEMA: dict[str, dict[str, dict[str, Any]]] = json.loads(
    (VECTORS / "messages.json").read_text())["messages"]

#: Vectors the Python core does not pass yet, with the reason.  strict: a
#: vector that starts passing fails here until its mark is removed.
XFAIL: dict[str, str] = {}

WELCOME = {"t": "welcome", "version": 1, "server": "vectors", "page_size": 4, "max_page_size": 64,
           "max_window": 16, "max_streams": 4}


def load() -> list[Any]:
    params = []
    names: set[str] = set()
    for path in sorted(VECTORS.glob("*.json")):
        if path.name == "messages.json":
            continue
        for vector in json.loads(path.read_text())["vectors"]:
            assert vector["name"] not in names, f"duplicate vector name {vector['name']}"
            names.add(vector["name"])
            marks = []
            if vector["name"] in XFAIL:
                marks.append(pytest.mark.xfail(reason=XFAIL[vector["name"]], strict=True))
            params.append(pytest.param(vector, id=vector["name"], marks=marks))
    return params


# ------------------------------------------------------------------ the encodings of tests/vectors/README.md


def to_bytes(form: dict[str, str]) -> bytes:
    ((kind, text),) = form.items()
    if kind == "$bin":
        return bytes.fromhex(text)
    data = text.encode()
    if kind == "$utf8":
        return data
    if kind == "$xxh3":
        return xxhash.xxh3_64_digest(data)
    if kind == "$xxh128":
        return xxhash.xxh3_128_digest(data)
    if kind == "$sha256":
        return hashlib.sha256(data).digest()
    raise ValueError(f"unknown bytes form {kind}")


def native(value: Any) -> Any:
    """JSON with the {"$...": ...} bytes forms -> Python values with bytes."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return to_bytes(value)
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


def normalise(frame: dict[str, Any]) -> dict[str, Any]:
    """Leave out nil and default-valued fields, and error.message (README, "Frames out")."""
    fields = SCHEMA[frame["t"]]
    out = {"t": frame["t"]}
    for key, value in frame.items():
        if key == "t" or value is None:
            continue
        spec = fields.get(key)
        if spec is not None and not spec.get("required") and spec["default"] == value \
                and type(spec["default"]) is type(value):
            continue
        if frame["t"] == "error" and key == "message":
            continue
        out[key] = value
    return out


def decode_out(frames: list[bytes]) -> list[dict[str, Any]]:
    decoded = []
    for frame in frames:
        m.decode(frame)  # what we send must be a valid message
        decoded.append(normalise(msgpack.unpackb(frame, raw=False)))
    return decoded


def flatten(message: m.Message) -> dict[str, Any]:
    return {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}


def code_of(error: PagebridgeError) -> str:
    return str(error.code)


def event_dict(event: Any) -> dict[str, Any]:
    """One core event in the vocabulary of the README's event table."""
    name = type(event).__name__
    table = {
        "Welcomed": lambda e: {"event": "welcomed", **flatten(e.welcome)},
        "ListingReceived": lambda e: {"event": "listing", **flatten(e.listing)},
        "RequestFailed": lambda e: {"event": "request_failed", "id": e.id, "code": code_of(e.error)},
        "StreamOpened": lambda e: {"event": "opened", **flatten(e.opened)},
        "PageReceived": lambda e: {"event": "page", **flatten(e.page)},
        "HitsReceived": lambda e: {"event": "hits", **flatten(e.hits)},
        "LocatedReceived": lambda e: {"event": "located", **flatten(e.located)},
        "StreamEvent": lambda e: {"event": "event", **flatten(e.event)},
        "StreamEnded": lambda e: {"event": "ended", **flatten(e.end)},
        "StreamFailed": lambda e: {"event": "stream_failed", "stream": e.stream, "code": code_of(e.error)},
        "ConnectionFailed": lambda e: {"event": "connection_failed", "code": code_of(e.error)},
        "HelloReceived": lambda e: {"event": "hello_received", "agent": e.agent},
        "ListRequested": lambda e: {"event": "list_requested", "id": e.id, "path": e.path},
        "OpenRequested": lambda e: {"event": "open_requested", **flatten(e.request)},
        "ScanRequested": lambda e: {"event": "scan_requested", **flatten(e.request)},
        "LocateRequested": lambda e: {"event": "locate_requested", **flatten(e.request)},
        "CreditGranted": lambda e: {"event": "credit_granted", "stream": e.stream},
        "StreamClosed": lambda e: {"event": "stream_closed", "stream": e.stream, "code": code_of(e.error)},
    }
    return table[name](event)


def matches(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Only the fields the vector lists are compared; for listing, truncated defaults to false."""
    return all(actual.get(k, False if k == "truncated" else None) == v for k, v in expected.items())


# ------------------------------------------------------------------ the sides under test


class Outcome:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.close: int | None = None
        self.local_error = False
        self.value: Any = None


class CollectorSide:
    def __init__(self, options: dict[str, Any]) -> None:
        self.core = CollectorProtocol(
            token=options.get("token"), agent=options.get("agent", "vectors"),
            initial_window=options.get("initial_window", 16),
            max_window_bytes=options.get("max_window_bytes", 16 << 20))

    def out(self) -> list[bytes]:
        return self.core.data_to_send()

    def receive(self, frame: bytes | str, outcome: Outcome) -> None:
        try:
            if isinstance(frame, str):
                if not hasattr(self.core, "receive_text"):
                    raise AssertionError("CollectorProtocol has no entry for text frames (receive_text)")
                events = self.core.receive_text()
            else:
                events = self.core.receive(frame)
        except ProtocolError as exc:
            outcome.events.append({"event": "connection_failed", "code": code_of(exc)})
            outcome.close = close_code_for(exc)
            return
        for event in events:
            if type(event).__name__ == "ConnectionFailed" and getattr(event, "close_code", None) is not None:
                outcome.close = event.close_code
            outcome.events.append(event_dict(event))

    def act(self, step: dict[str, Any], outcome: Outcome) -> None:
        action = step["do"]
        try:
            if action == "start":
                return
            if action == "open":
                options = {k: native(v) for k, v in step.items()
                           if k not in ("do", "path", "out", "events", "close", "local_error")}
                self.core.open(step["path"], **options)
            elif action == "consume":
                self.core.consumed(step["stream"], step["seq"], 0.0)
            elif action == "cancel":
                self.core.cancel(step["stream"])
            elif action == "list":
                self.core.request_list(step.get("path", ""))
            elif action == "scan":
                options = {k: native(v) for k, v in step.items()
                           if k not in ("do", "path", "pattern", "out", "events", "close", "local_error")}
                self.core.scan(step["path"], step["pattern"], **options)
            elif action == "locate":
                self.core.request_locate(step["path"], offset=step.get("offset"), line=step.get("line"))
            else:
                raise ValueError(f"unknown collector action {action}")
        except PagebridgeError:
            outcome.local_error = True


class PagerSide:
    def __init__(self, options: dict[str, Any]) -> None:
        self.core = PagerProtocol(
            token=options.get("token"), server_name=options.get("server_name", "vectors"),
            page_size=options.get("page_size", 4), max_page_size=options.get("max_page_size", 64),
            max_window=options.get("max_window", 16), max_streams=options.get("max_streams", 4))

    def out(self) -> list[bytes]:
        return self.core.data_to_send()

    def receive(self, frame: bytes | str, outcome: Outcome) -> None:
        try:
            if isinstance(frame, str):
                if not hasattr(self.core, "receive_text"):
                    raise AssertionError("PagerProtocol has no entry for text frames (receive_text)")
                events = self.core.receive_text()
            else:
                events = self.core.receive(frame)
        except ProtocolError as exc:
            outcome.close = close_code_for(exc)
            return
        for event in events:
            if type(event).__name__ == "CloseConnection":  # the step's "close", not an event
                outcome.close = event.code
            else:
                outcome.events.append(event_dict(event))

    def act(self, step: dict[str, Any], outcome: Outcome) -> None:
        core = self.core
        args = {k: native(v) for k, v in step.items()
                if k not in ("do", "out", "events", "close", "value", "local_error")}
        action = step["do"]
        try:
            if action == "accept_open":
                core.accept_open(args["stream"], path=args["path"], size=args.get("size"),
                                 length=args.get("length"), mtime=args.get("mtime"), etag=args.get("etag"))
            elif action == "page":
                core.send_page(args["stream"], args["data"])
            elif action == "event":
                core.send_event(args["stream"], args["kind"], args["offset"], lost=args.get("lost"),
                                detail=args.get("detail"))
            elif action == "end":
                core.end_stream(args["stream"], scanned=args.get("scanned"), count=args.get("count"))
            elif action == "hits":
                core.send_hits(args["stream"], args["scanned"], args["matches"], args.get("count"))
            elif action == "answer_locate":
                core.answer_locate(args["id"], args["path"], etag=args["etag"], size=args["size"],
                                   line=args["line"], offset=args["offset"], lines=args["lines"])
            elif action == "fail_stream":
                core.fail_stream(args["stream"], args["code"], args["message"])
            elif action == "answer_list":
                extra = {"truncated": args["truncated"]} if "truncated" in args else {}
                if extra and "truncated" not in inspect.signature(core.answer_list).parameters:
                    raise AssertionError("PagerProtocol.answer_list takes no truncated flag")
                core.answer_list(args["id"], args["path"], args["entries"], **extra)
            elif action == "reject_request":
                core.reject_request(args["id"], args["code"], args["message"])
            elif action == "credits":
                outcome.value = core.credits(args["stream"])
            else:
                raise ValueError(f"unknown pager action {action}")
        except PagebridgeError:
            outcome.local_error = True


# ------------------------------------------------------------------ replay


def check(step: dict[str, Any], outcome: Outcome, frames: list[bytes], where: str) -> None:
    expected_events = native(step.get("events", []))
    assert len(outcome.events) == len(expected_events) and all(
        matches(a, e) for a, e in zip(outcome.events, expected_events, strict=True)), (
        f"{where}: events {outcome.events!r}, expected {expected_events!r}")
    expected_out = [normalise(f) for f in native(step.get("out", []))]
    assert decode_out(frames) == expected_out, f"{where}: frames out"
    assert outcome.close == step.get("close"), f"{where}: close code"
    assert outcome.local_error == step.get("local_error", False), f"{where}: local error"
    if "value" in step:
        assert outcome.value == step["value"], f"{where}: value"


def replay(vector: dict[str, Any]) -> None:
    options = vector.get("options", {})
    side: CollectorSide | PagerSide
    steps = vector["steps"]
    if vector["side"] == "collector":
        side = CollectorSide(options)
        hello = side.out()
        if vector.get("handshake", True):
            assert decode_out(hello) == [normalise({"t": "hello", "token": options.get("token"),
                                                    "agent": options.get("agent", "vectors")})]
            outcome = Outcome()
            side.receive(m.encode(m.Welcome(**{k: v for k, v in WELCOME.items() if k != "t"})), outcome)
            assert [e["event"] for e in outcome.events] == ["welcomed"] and not side.out()
        else:
            assert steps[0] == {**steps[0], "do": "start"}, "a vector without handshake starts with start"
            check(steps[0], Outcome(), hello, "step 0 (start)")
            steps = steps[1:]
    else:
        side = PagerSide(options)
        if vector.get("handshake", True):
            outcome = Outcome()
            side.receive(m.Hello(options.get("token"), "vectors").encode(), outcome)
            assert [e["event"] for e in outcome.events] == ["hello_received"]
            assert [f["t"] for f in decode_out(side.out())] == ["welcome"]
    for index, step in enumerate(steps):
        outcome = Outcome()
        if "in" in step:
            side.receive(msgpack.packb(native(step["in"]), use_bin_type=True), outcome)
        elif "in_raw" in step:
            side.receive(bytes.fromhex(step["in_raw"]), outcome)
        elif "in_text" in step:
            side.receive(step["in_text"], outcome)
        else:
            side.act(step, outcome)
        check(step, outcome, side.out(), f"step {index} {json.dumps(step)[:100]}")


@pytest.mark.parametrize("vector", load())
def test_vector(vector: dict[str, Any]) -> None:
    """Each vector holds on the Python core (its `proves` line says what it proves)."""
    replay(vector)


def python_schema() -> dict[str, dict[str, dict[str, Any]]]:
    names = {int: "int", float: "float", str: "str", bytes: "bin", bool: "bool", list: "array", dict: "map"}
    schema: dict[str, dict[str, dict[str, Any]]] = {}
    for type_name, cls in m.MESSAGE_TYPES.items():
        hints = {f.name: f for f in dataclasses.fields(cls)}
        checks = m._checks_of(type_name)  # the decoder's own table
        fields: dict[str, dict[str, Any]] = {}
        for name, (accepted, required) in checks.items():
            (kind,) = {names[t] for t in accepted if t is not type(None)}
            fields[name] = {"type": kind, "required": True} if required else {
                "type": kind, "default": hints[name].default}
        schema[type_name] = fields
    return schema


def test_schema_matches_messages_py() -> None:
    """bridge/core/messages.py declares exactly the messages, fields, types and defaults of messages.json."""
    assert python_schema() == SCHEMA


def test_vectors_cover_every_message_type() -> None:
    """Every message type of messages.json appears in some vector, in or out."""
    text = "".join(p.read_text() for p in VECTORS.glob("*-*.json"))
    missing = [t for t in SCHEMA if f'"t": "{t}"' not in text]
    assert missing == []
