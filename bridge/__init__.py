"""pagebridge: page files and live byte streams over WebSocket, acknowledged and verified.

The sans-I/O core is :mod:`bridge.core` (no asyncio, os or websockets);
:mod:`bridge.aio` holds the asyncio shells (server, client, the pump they share);
:mod:`bridge.sources` the pagers (files, followed files, push sources, the catalog);
:mod:`bridge.http` the viewer's static files.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr

# The public names are imported when first used (PEP 562), so a command
# such as `pagebridge grep` loads the client without the server, and
# `import bridge.core` stays light.
_LAZY = {
    "DownloadResult": ".aio.client", "Entry": ".aio.client", "Location": ".aio.client",
    "Match": ".aio.client", "PageStream": ".aio.client", "SearchStream": ".aio.client",
    "Session": ".aio.client", "connect": ".aio.client", "Pool": ".aio.pool",
    "PageServer": ".aio.server",
    "CancelledStreamError": ".errors", "ConnectionClosedError": ".errors", "ErrorCode": ".errors",
    "FileChangedError": ".errors", "IntegrityError": ".errors", "PagebridgeError": ".errors",
    "ProtocolError": ".errors", "StreamError": ".errors",
    "BytesPager": ".sources.base", "Pager": ".sources.base", "PagingResult": ".sources.base",
    "SourceInfo": ".sources.base",
    "FilePager": ".sources.files",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


if TYPE_CHECKING:
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
    from .aio.pool import Pool  # noqa: E402
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
    "PageStream", "Pager", "PagebridgeError", "PagingResult", "Pool", "ProtocolError", "SearchStream", "Session",
    "SourceInfo",
    "StreamError", "__version__", "connect",
]
