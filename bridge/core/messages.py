"""Every pagebridge message, and its one encoding.

A message is a frozen dataclass.  On the wire it is one msgpack map per
binary WebSocket frame: the key ``"t"`` holds the message type (the
class's ``TYPE``), the other keys are the dataclass fields.  A ``page``
is written with its ``data`` last, so that its frame is a small header
followed by the page's bytes as they are (:func:`page_header`), and read
back with ``data`` as a view of the received frame (no copy either way);
any other valid layout decodes too.  Fields with a
default may be omitted; ``None`` and an omitted optional field mean the
same.  Unknown types, unknown fields, missing fields and wrong types are
all refused with :class:`~bridge.errors.ProtocolError` (code
``bad_message``), never guessed at.  docs/protocol.md is the prose version
of this file.
"""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from typing import Any, ClassVar, Union

import msgpack

from ..errors import ErrorCode, ProtocolError

#: Largest integer the protocol carries (msgpack's signed 64-bit range, so
#: every language's decoder handles it; JS collectors see it as a double
#: only above 2**53, which no offset reaches in practice).
MAX_INT = 2**63 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """Base of all messages."""

    TYPE: ClassVar[str] = ""

    def encode(self) -> bytes:
        """Serialise to the bytes of one binary WebSocket frame."""
        return encode(self)


# ---------------------------------------------------------------- collector -> server


@dataclasses.dataclass(frozen=True, slots=True)
class Hello(Message):
    """First message of a connection: authenticates, names the client."""

    TYPE: ClassVar[str] = "hello"
    token: str | None = None
    agent: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class List(Message):
    """Ask for the entries of a directory (``path`` relative to the root)."""

    TYPE: ClassVar[str] = "list"
    id: int
    path: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Open(Message):
    """Start paging ``path`` on a new stream chosen by the collector."""

    TYPE: ClassVar[str] = "open"
    stream: int
    path: str
    offset: int = 0
    length: int | None = None
    window: int = 8
    page_size: int | None = None
    if_match: str | None = None
    follow: bool = False
    text: bool = False
    sha256: bool = False
    integrity: bool = True
    compress: list[str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Scan(Message):
    """Search ``path`` on a new stream: matching lines come back in ``hits`` messages."""

    TYPE: ClassVar[str] = "scan"
    stream: int
    path: str
    pattern: str
    regex: bool = False
    ignore_case: bool = False
    offset: int = 0
    length: int | None = None
    follow: bool = False
    window: int = 8
    max_text: int | None = None
    count_only: bool = False
    line_numbers: bool = True
    keep_cr: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Locate(Message):
    """Ask which line holds byte ``offset``, or where line ``line`` starts."""

    TYPE: ClassVar[str] = "locate"
    id: int
    path: str
    offset: int | None = None
    line: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ack(Message):
    """Pages up to ``seq`` are consumed; pages up to ``max`` may be sent."""

    TYPE: ClassVar[str] = "ack"
    stream: int
    seq: int
    max: int


@dataclasses.dataclass(frozen=True, slots=True)
class Cancel(Message):
    """Stop a stream; the server answers with an ``error`` of code ``cancelled``."""

    TYPE: ClassVar[str] = "cancel"
    stream: int


# ---------------------------------------------------------------- server -> collector


@dataclasses.dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Answer to ``hello``: the server's limits."""

    TYPE: ClassVar[str] = "welcome"
    version: int
    server: str
    page_size: int
    max_page_size: int
    max_window: int
    max_streams: int


@dataclasses.dataclass(frozen=True, slots=True)
class Listing(Message):
    """Answer to ``list``: one map per entry (name, kind, size, mtime); ``truncated`` when capped."""

    TYPE: ClassVar[str] = "listing"
    id: int
    path: str
    entries: list[dict[str, Any]]
    truncated: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Opened(Message):
    """Answer to ``open``: what is about to be paged."""

    TYPE: ClassVar[str] = "opened"
    stream: int
    path: str
    offset: int
    size: int | None = None
    length: int | None = None
    mtime: float | None = None
    etag: str | None = None
    page_size: int | None = None
    compression: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Message):
    """One page: ``data`` at ``offset``, checked by its XXH3-64 ``xxh``.

    A decoded page's ``data`` is a read-only ``memoryview`` of the received
    frame when the frame has the usual layout (``data`` last), else
    ``bytes``: both are bytes-like (hash it, write it, compare it, slice
    it); ``bytes(page.data)`` makes a copy that outlives the frame.
    """

    TYPE: ClassVar[str] = "page"
    stream: int
    seq: int
    offset: int
    data: bytes | memoryview
    xxh: bytes
    #: Present when ``data`` is compressed (with the stream's
    #: ``opened.compression``): the length of the page's bytes once decompressed.
    size: int | None = None

    def encode(self) -> bytes:
        """The frame: the header, then the data (one copy of it, into the frame)."""
        return page_header(self.stream, self.seq, self.offset, self.xxh, len(self.data), self.size) + self.data


@dataclasses.dataclass(frozen=True, slots=True)
class Hits(Message):
    """Matching lines of a scan (each ``{offset, line, text, cut}``); takes one credit."""

    TYPE: ClassVar[str] = "hits"
    stream: int
    seq: int
    scanned: int
    matches: list[dict[str, Any]]
    count: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Located(Message):
    """Answer to ``locate``."""

    TYPE: ClassVar[str] = "located"
    id: int
    path: str
    etag: str
    size: int
    line: int
    offset: int
    lines: int


@dataclasses.dataclass(frozen=True, slots=True)
class End(Message):
    """The stream is complete; ``digest`` is the XXH3-128 of all its bytes."""

    TYPE: ClassVar[str] = "end"
    stream: int
    pages: int
    length: int
    digest: bytes
    sha256: bytes | None = None
    count: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Event(Message):
    """Something happened to a live stream's source (rotation, truncation...)."""

    TYPE: ClassVar[str] = "event"
    stream: int
    kind: str
    offset: int
    lost: int | None = None
    detail: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Error(Message):
    """A refusal.  With ``stream`` or ``id`` it ends only that request."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    stream: int | None = None
    id: int | None = None


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (Hello, List, Open, Scan, Locate, Ack, Cancel, Welcome, Listing, Opened, Page, Hits,
                End, Event, Error, Located)
}

# ---------------------------------------------------------------- validation tables

_NONE = type(None)


#: Evaluated annotations, by their text: a handful of distinct ones
#: (``int``, ``int | None``...) across all the messages.
_HINTS: dict[str, Any] = {}


def _hint(annotation: Any) -> Any:
    # What typing.get_type_hints would give, one eval per distinct text
    # instead of a compile per field: this table is built when a command
    # starts, and start-up time counts (bench/README.md, "Scan").
    if not isinstance(annotation, str):
        return annotation
    hint = _HINTS.get(annotation)
    if hint is None:
        hint = _HINTS[annotation] = eval(annotation, globals())  # noqa: S307 - our own annotations
    return hint


def _field_checks(cls: type[Message]) -> dict[str, tuple[tuple[type, ...], bool]]:
    """{field: (accepted python types, required)} derived from the annotations."""
    table: dict[str, tuple[tuple[type, ...], bool]] = {}
    for field in dataclasses.fields(cls):
        hint = _hint(field.type)
        if typing.get_origin(hint) in (Union, types.UnionType):
            # memoryview is how a decoded page holds its data; on the wire it is bin (bytes).
            accepted = tuple(typing.get_origin(a) or a for a in typing.get_args(hint) if a is not memoryview)
        else:
            accepted = (typing.get_origin(hint) or hint,)
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        table[field.name] = (accepted, required)
    return table


#: The tables of the message types decoded so far (built on first use).
_CHECKS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {}


def _checks_of(type_name: str) -> dict[str, tuple[tuple[type, ...], bool]]:
    """The decoder's table for a known message type."""
    checks = _CHECKS.get(type_name)
    if checks is None:
        checks = _CHECKS[type_name] = _field_checks(MESSAGE_TYPES[type_name])
    return checks


def _check_value(type_name: str, key: str, value: Any, accepted: tuple[type, ...]) -> None:
    if value is None:
        if _NONE in accepted:
            return
    elif isinstance(value, bool):
        # bool is a subclass of int in Python; the wire keeps them apart.
        if bool in accepted:
            return
    elif isinstance(value, int):
        if int in accepted:
            if not -1 <= value <= MAX_INT:
                raise ProtocolError(f"field {key!r} of {type_name!r} is out of range: {value}")
            return
        if float in accepted:
            return
    elif isinstance(value, tuple(t for t in accepted if t not in (int, bool, _NONE))):
        return
    elif isinstance(value, memoryview) and bytes in accepted:
        return
    names = " or ".join("nil" if t is _NONE else t.__name__ for t in accepted)
    raise ProtocolError(
        f"field {key!r} of {type_name!r} must be {names}, not {type(value).__name__}"
    )


# ---------------------------------------------------------------- encode / decode


def encode(message: Message) -> bytes:
    """Serialise ``message`` as one msgpack map (a page with its data last)."""
    if isinstance(message, Page):
        return message.encode()
    body: dict[str, Any] = {"t": message.TYPE}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if value is not None or field.default is dataclasses.MISSING:
            body[field.name] = value
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


# ---------------------------------------------------------------- pages without copies

#: The key that ends a page's header: fixstr "data".  The bin header of the
#: data follows it, then the data to the end of the frame.
_DATA_KEY = b"\xa4data"
#: Headers are under 100 bytes; a "data" key further in is not the layout
#: the fast path reads (the generic decoder takes such frames).
_HEADER_SCAN = 160
#: Room a page needs before its data for the header (:func:`page_header`):
#: the map, the type, three 64-bit integers, the 8-byte check, and the
#: data key and its bin32 header, with room to spare.
PAGE_HEADROOM = 128


def _bin_header(size: int) -> bytes:
    if size < 0x100:
        return struct.pack(">BB", 0xC4, size)
    if size < 0x10000:
        return struct.pack(">BH", 0xC5, size)
    return struct.pack(">BI", 0xC6, size)


def page_header(stream: int, seq: int, offset: int, xxh: bytes, length: int,
                size: int | None = None) -> bytes:
    """The bytes of a ``page`` message up to its data, for ``length`` bytes of data.

    ``page_header(...) + data`` is the whole frame: one msgpack map whose
    last entry is ``data`` (bin), so a sender can write the header right
    before the data it already holds instead of copying the data into a
    packed map.
    """
    fields: dict[str, Any] = {"t": "page", "stream": stream, "seq": seq, "offset": offset, "xxh": xxh}
    if size is not None:
        fields["size"] = size
    head: bytes = msgpack.packb(fields, use_bin_type=True)
    # A fixmap of N entries (0x80 + N) becomes one of N + 1: the data is the last.
    return bytes((head[0] + 1,)) + head[1:] + _DATA_KEY + _bin_header(length)


def _data_last(frame: bytes | memoryview) -> dict[str, Any] | None:
    """The map of a frame whose last entry is ``data`` (bin), with the data as a view.

    None when the frame has another layout.  A candidate "data" key is
    accepted only if everything before it parses as exactly the other
    entries of the map and the bin it announces ends exactly at the end
    of the frame: then this is the frame's one parse, as msgpack would
    read it, and not a "data" that happens to occur inside a value.
    """
    # The header is within its first bytes: only those are searched (a copy
    # of them when the frame is a view).
    head = frame[:_HEADER_SCAN + 6] if isinstance(frame, bytes) else bytes(frame[:_HEADER_SCAN + 6])
    total = len(frame)
    first = head[0] if head else 0
    if not 0x81 <= first <= 0x8F:  # a fixmap with at least the data entry
        return None
    pos = head.find(_DATA_KEY, 1, _HEADER_SCAN)
    while pos != -1:
        marker = pos + len(_DATA_KEY)
        kind = head[marker] if marker < len(head) else 0
        width = {0xC4: 1, 0xC5: 2, 0xC6: 4}.get(kind)
        if width is not None and marker + 1 + width <= len(head):
            size = int.from_bytes(head[marker + 1:marker + 1 + width], "big")
            start = marker + 1 + width
            if start + size == total:
                try:
                    body = msgpack.unpackb(bytes((first - 1,)) + head[1:pos], raw=False,
                                           strict_map_key=True, use_list=True)
                except Exception:
                    body = None
                if isinstance(body, dict):
                    body["data"] = memoryview(frame)[start:]
                    return body
        pos = head.find(_DATA_KEY, pos + 1, _HEADER_SCAN)
    return None


def decode(frame: bytes | bytearray | memoryview) -> Message:
    """Parse one frame into a message, or raise ProtocolError(bad_message).

    ``msgpack.unpackb`` bounds every length by the size of its input, so
    a frame that claims billions of items fails fast instead of
    allocating; the frame itself is bounded by the WebSocket ``max_size``.
    A page whose data comes last keeps it as a view of ``frame``.
    """
    # Only an immutable frame lends its bytes: a view would pin a caller's
    # bytearray (no resizing while it lives) and change with it.  A read-only
    # view counts as immutable: its owner promises not to change the bytes
    # while views of them live (the client's receive buffers, bridge/aio/receive.py).
    body = _data_last(frame) if isinstance(frame, bytes) or (
        isinstance(frame, memoryview) and frame.readonly) else None
    if body is None:
        try:
            body = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
        except Exception as exc:  # msgpack raises a zoo of types for garbage
            raise ProtocolError(f"frame is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"a message must be a msgpack map, not {type(body).__name__}")
    type_name = body.pop("t", None)
    if not isinstance(type_name, str):
        raise ProtocolError("message has no string field 't' naming its type")
    cls = MESSAGE_TYPES.get(type_name)
    if cls is None:
        raise ProtocolError(f"unknown message type {type_name[:40]!r}")
    checks = _checks_of(type_name)
    for key, value in body.items():
        if key not in checks:
            raise ProtocolError(f"unknown field {str(key)[:40]!r} in {type_name!r}")
        _check_value(type_name, key, value, checks[key][0])
    for key, (_, required) in checks.items():
        if required and key not in body:
            raise ProtocolError(f"field {key!r} is missing from {type_name!r}")
    return cls(**body)


__all__ = [
    "MAX_INT",
    "MESSAGE_TYPES",
    "Ack",
    "Cancel",
    "End",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "Hits",
    "List",
    "Listing",
    "Locate",
    "Located",
    "Message",
    "Open",
    "Opened",
    "PAGE_HEADROOM",
    "Page",
    "Scan",
    "Welcome",
    "decode",
    "encode",
    "page_header",
]
