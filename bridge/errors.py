"""Errors: one tree, one table of codes.

Every refusal pagebridge makes carries an :class:`ErrorCode` (a short
string that travels on the wire) and a human sentence.  The tree::

    PagebridgeError                 base of everything raised here; has .code
    ├── ProtocolError               the peer broke the protocol (bad message,
    │                               credit overflow, page never announced...)
    ├── StreamError                 one stream failed; the connection lives on
    │   ├── IntegrityError          a page or the stream digest did not match
    │   ├── FileChangedError        the file's etag differs from if_match
    │   └── CancelledStreamError    the stream was cancelled
    ├── ConnectionClosedError       the connection ended before the stream did
    └── LocalProtocolError          the caller (our own I/O layer) misused the
                                    core: a bug, logged, never sent to the peer

The codes are the contract with collectors; docs/protocol.md lists them.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Error codes carried by ``error`` messages (see docs/protocol.md)."""

    BAD_MESSAGE = "bad_message"  # undecodable frame, unknown type, wrong field type
    BAD_REQUEST = "bad_request"  # well-formed but meaningless (negative offset...)
    UNAUTHORIZED = "unauthorized"  # missing or wrong token
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"  # outside the root, hidden, escaping symlink
    NOT_A_FILE = "not_a_file"  # FIFO, device, socket, directory opened as file
    NOT_A_DIRECTORY = "not_a_directory"
    FILE_CHANGED = "file_changed"  # if_match failed or the file changed mid-stream
    TOO_MANY_STREAMS = "too_many_streams"
    STREAM_IN_USE = "stream_in_use"  # open with an id that is already open
    UNKNOWN_STREAM = "unknown_stream"
    CREDIT_VIOLATION = "credit_violation"  # a page sent beyond the granted credit
    INTEGRITY = "integrity"  # checksum or digest mismatch (detected by a collector)
    IO_ERROR = "io_error"  # the source failed to read
    TOO_SLOW = "too_slow"  # a live source dropped a collector that fell behind
    BUSY = "busy"  # a server budget is exhausted (open files, queued listings): retry later
    CANCELLED = "cancelled"
    INTERNAL = "internal"  # a bug on the server; details stay in its log


class CloseCode(enum.IntEnum):
    """WebSocket close codes used by pagebridge (RFC 6455 section 7.4)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002  # undecodable or out-of-order messages
    UNSUPPORTED_DATA = 1003  # a text frame
    POLICY_VIOLATION = 1008  # unauthorized, or no hello in time
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


class PagebridgeError(Exception):
    """Base class of every error pagebridge raises."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ProtocolError(PagebridgeError):
    """The peer sent something the protocol does not allow."""

    code = ErrorCode.BAD_MESSAGE


class StreamError(PagebridgeError):
    """One stream failed; the connection and its other streams live on."""


class IntegrityError(StreamError):
    """A page checksum or the end-of-stream digest did not match."""

    code = ErrorCode.INTEGRITY


class FileChangedError(StreamError):
    """The file is not the version the collector asked for (``if_match``)."""

    code = ErrorCode.FILE_CHANGED


class CancelledStreamError(StreamError):
    """The stream was cancelled by the collector."""

    code = ErrorCode.CANCELLED


class ConnectionClosedError(PagebridgeError):
    """The connection ended before the stream completed."""

    code = ErrorCode.CANCELLED


class LocalProtocolError(PagebridgeError):
    """Our side broke the protocol's rules: a page without credit, an unknown stream...

    Like h11's ``LocalProtocolError``: it is a bug in the caller, not the
    peer's fault.  The shells log it and fail the stream with ``internal``;
    its text never reaches the peer.
    """

    code = ErrorCode.INTERNAL


def stream_error(code: ErrorCode | str, message: str) -> StreamError:
    """Build the most specific StreamError for a code received on the wire."""
    try:
        code = ErrorCode(code)
    except ValueError:
        code = ErrorCode.INTERNAL
    cls: type[StreamError] = {
        ErrorCode.INTEGRITY: IntegrityError,
        ErrorCode.FILE_CHANGED: FileChangedError,
        ErrorCode.CANCELLED: CancelledStreamError,
    }.get(code, StreamError)
    return cls(message, code)
