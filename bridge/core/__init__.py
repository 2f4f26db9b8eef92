"""The sans-I/O core: messages, both sides' state machines, limits.

Nothing in this package imports asyncio, os or websockets: it takes frames
in and hands events and frames out, so it is tested by pairing the two
sides in memory (tests/test_protocol.py) and replayed from the shared
conformance vectors (tests/vectors/).
"""

from . import messages
from .collector import (
    CollectorEvent,
    CollectorProtocol,
    CollectorStream,
    ConnectionFailed,
    ListingReceived,
    PageReceived,
    RequestFailed,
    StreamEnded,
    StreamEvent,
    StreamFailed,
    StreamOpened,
    Welcomed,
    ack_every,
)
from .limits import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_STREAMS,
    MAX_WINDOW,
    PAGE_OVERHEAD,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    page_check,
)
from .pager import (
    CloseConnection,
    ConnectionState,
    CreditGranted,
    HelloReceived,
    ListRequested,
    OpenRequested,
    PagerEvent,
    PagerProtocol,
    PagerStream,
    StreamClosed,
    StreamState,
    StreamStats,
    close_code_for,
)

__all__ = [
    "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_STREAMS", "MAX_WINDOW", "PAGE_OVERHEAD",
    "PROTOCOL_VERSION", "SUBPROTOCOL",
    "CollectorEvent", "CollectorProtocol", "CollectorStream", "ConnectionFailed", "CreditGranted",
    "HelloReceived", "ListRequested", "ListingReceived", "OpenRequested", "PageReceived",
    "PagerEvent", "PagerProtocol", "PagerStream", "RequestFailed", "StreamClosed", "StreamEnded",
    "StreamEvent", "StreamFailed", "StreamOpened", "StreamState", "Welcomed", "close_code_for",
    "messages", "page_check", "CloseConnection", "ConnectionState", "StreamStats", "ack_every",
]
