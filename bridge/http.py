"""The viewer's static files over plain HTTP, on the same port as ``/ws``.

Only what the viewer needs: GET of regular files under the web root, with a
strict Content-Security-Policy.  Path rules are the protocol's
(:func:`bridge.sources.paths.resolve`).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from .errors import StreamError
from .sources.paths import resolve

#: Where the viewer lives: inside the package when installed from a wheel
#: (``bridge/web``, see pyproject.toml), else the repository's ``web/``.
_PACKAGED_WEB = Path(__file__).resolve().parent / "web"
_REPO_WEB = Path(__file__).resolve().parent.parent / "web"
WEB_ROOT = _PACKAGED_WEB if (_PACKAGED_WEB / "index.html").is_file() else _REPO_WEB

#: The viewer's policy.  'wasm-unsafe-eval' lets hash-wasm compile its
#: WebAssembly (XXH3) and zstddec its zstd decoder, which it loads from a
#: data: URL it carries (hence connect-src data:, which reaches no network);
#: inline scripts stay forbidden except the import map, whose exact hash is
#: added per response (see csp_for).
CSP = (
    "default-src 'self'; connect-src 'self' data:; img-src 'self' data:; style-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval'{extra}; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(extra=""),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.S)


def csp_for(html: bytes) -> str:
    """The CSP for an HTML page: inline import maps allowed by their exact sha256."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _IMPORT_MAP.finditer(html))
    return CSP.format(extra=hashes)


def static_response(connection: ServerConnection, web_root: Path | None, path: str) -> Response:
    """Answer a GET for ``path`` from ``web_root`` (404 for anything else)."""
    if web_root is None:
        return connection.respond(404, "no viewer is served here\n")
    rel = path.lstrip("/") or "index.html"
    try:
        resolved = resolve(web_root.resolve(), rel)
        if resolved.real.is_dir():
            resolved = resolve(web_root.resolve(), rel.rstrip("/") + "/index.html")
        body = resolved.real.read_bytes()
    except (StreamError, OSError):
        return connection.respond(404, "not found\n")
    ctype = mimetypes.guess_type(resolved.real.name)[0] or "application/octet-stream"
    if resolved.real.suffix in (".js", ".mjs"):
        ctype = "text/javascript"
    if ctype.startswith("text/") or ctype in ("application/json",):
        ctype += "; charset=utf-8"
    headers = Headers(SECURITY_HEADERS)
    if resolved.real.suffix == ".html":
        del headers["Content-Security-Policy"]
        headers["Content-Security-Policy"] = csp_for(body)
    headers["Content-Type"] = ctype
    headers["Content-Length"] = str(len(body))
    return Response(200, "OK", headers, body)


__all__ = ["CSP", "SECURITY_HEADERS", "WEB_ROOT", "csp_for", "static_response"]
