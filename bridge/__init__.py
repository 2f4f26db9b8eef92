"""pagebridge: page files and live byte streams over WebSocket, acknowledged and verified.

The sans-I/O core is :mod:`bridge.messages` and :mod:`bridge.protocol`;
:mod:`bridge.server` and :mod:`bridge.client` are the asyncio shell.
"""

__version__ = "0.1.0"

from .client import DownloadResult, Entry, PageStream, Session, connect  # noqa: E402
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
from .server import PageServer  # noqa: E402
from .sources import BytesPager, FilePager, Pager, PagingResult, SourceInfo  # noqa: E402

__all__ = [
    "BytesPager", "CancelledStreamError", "ConnectionClosedError", "DownloadResult", "Entry",
    "ErrorCode", "FileChangedError", "FilePager", "IntegrityError", "PageServer", "PageStream",
    "Pager", "PagebridgeError", "PagingResult", "ProtocolError", "Session", "SourceInfo",
    "StreamError", "__version__", "connect",
]
