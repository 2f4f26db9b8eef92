"""The sans-I/O core: messages, both sides' state machines, limits.

Nothing in this package imports asyncio, os or websockets: it takes frames
in and hands events and frames out, so it is tested by pairing the two
sides in memory (tests/test_protocol.py) and replayed from the shared
conformance vectors (tests/vectors/).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

# Imported when first used (PEP 562): the client needs the collector, not
# the pager, and a command's start-up time is mostly imports.
_LAZY = {
    **dict.fromkeys(("CollectorEvent", "CollectorProtocol", "CollectorStream", "ConnectionFailed",
                     "ListingReceived", "PageReceived", "RequestFailed", "StreamEnded", "StreamEvent",
                     "StreamFailed", "StreamOpened", "Welcomed", "ack_every"), ".collector"),
    **dict.fromkeys(("DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_STREAMS", "MAX_WINDOW", "PAGE_OVERHEAD",
                     "PROTOCOL_VERSION", "SUBPROTOCOL", "page_check"), ".limits"),
    **dict.fromkeys(("CloseConnection", "ConnectionState", "CreditGranted", "HelloReceived", "ListRequested",
                     "OpenRequested", "PagerEvent", "PagerProtocol", "PagerStream", "StreamClosed",
                     "StreamState", "StreamStats", "close_code_for"), ".pager"),
}
_SUBMODULES = ("codecs", "collector", "limits", "messages", "pager")


__getattr__ = lazy_getattr(__name__, _LAZY, globals(), _SUBMODULES)


if TYPE_CHECKING:
    from . import messages  # noqa: E402
    from .collector import (  # noqa: E402
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
    from .limits import (  # noqa: E402
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
        MAX_STREAMS,
        MAX_WINDOW,
        PAGE_OVERHEAD,
        PROTOCOL_VERSION,
        SUBPROTOCOL,
        page_check,
    )
    from .pager import (  # noqa: E402
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
