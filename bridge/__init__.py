"""pagebridge: page files and live byte streams over WebSocket, acknowledged and verified.

The sans-I/O core is :mod:`bridge.core` (no asyncio, os or websockets);
:mod:`bridge.aio` holds the asyncio shells (server, client, the pump they share);
:mod:`bridge.sources` the pagers (files, followed files, push sources, the catalog);
:mod:`bridge.http` the viewer's static files.
"""

__version__ = "0.1.0"

from .aio.client import (  # noqa: E402
    DownloadResult,
    Entry,
    Location,
    Match,
    PageStream,
    SearchStream,
    Session,
    connect,
)
from .aio.server import PageServer  # noqa: E402
from .errors import (  # noqa: E402
    CancelledStreamError,
    ConnectionClosedError,
    ErrorCode,
    FileChangedError,
    IntegrityError,
    PagebridgeError,
    ProtocolError,
    StreamError,
)
from .sources.base import BytesPager, Pager, PagingResult, SourceInfo
from .sources.files import FilePager  # noqa: E402

__all__ = [
    "BytesPager", "CancelledStreamError", "ConnectionClosedError", "DownloadResult", "Entry",
    "ErrorCode", "FileChangedError", "FilePager", "IntegrityError", "Location", "Match", "PageServer",
    "PageStream", "Pager", "PagebridgeError", "PagingResult", "ProtocolError", "SearchStream", "Session",
    "SourceInfo",
    "StreamError", "__version__", "connect",
]
