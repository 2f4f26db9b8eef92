"""The viewer's static files over plain HTTP, on the same port as ``/ws``.

Only what the viewer needs: GET and HEAD of regular files under the web
root, with a strict Content-Security-Policy.  Path rules are the protocol's
(:func:`bridge.sources.paths.resolve`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import mimetypes
import os
import re
import stat
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from .errors import StreamError
from .sources.paths import clean, open_beneath, open_file

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


#: Methods the viewer's files answer; anything else is 405 with ``Allow``.
ALLOWED_METHODS = ("GET", "HEAD")


def static_response(connection: ServerConnection, web_root: Path | None, path: str,
                    method: str = "GET") -> Response:
    """Answer an HTTP request for ``path`` (already without its query) from ``web_root``.

    GET and HEAD only (405 otherwise; HEAD gets GET's headers and no body);
    regular files only, opened by the protocol's own rules
    (:func:`~bridge.sources.paths.open_beneath`: no ``..``, no dot files,
    no symlink out of the root, FIFOs and devices refused without being
    opened, so nothing here can block the event loop on a special file).
    Anything refused is a plain 404.
    """
    if method not in ALLOWED_METHODS:
        response = connection.respond(405, f"method {method[:20]} is not allowed\n")
        response.headers["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
    response = _file_response(connection, web_root, path)
    if method == "HEAD":
        return dataclasses.replace(response, body=b"")
    return response


def _file_response(connection: ServerConnection, web_root: Path | None, path: str) -> Response:
    if web_root is None:
        return connection.respond(404, "no viewer is served here\n")
    root = web_root.resolve()
    try:
        rel = clean(path.lstrip("/"))
        if stat.S_ISDIR(open_beneath(root, rel, want="stat").stat.st_mode):
            rel = f"{rel}/index.html" if rel else "index.html"
        fd, _, real = open_file(rel, root=root)
        with os.fdopen(fd, "rb") as f:
            body = f.read()
    except (StreamError, OSError):
        return connection.respond(404, "not found\n")
    ctype = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
    if real.suffix in (".js", ".mjs"):
        ctype = "text/javascript"
    if ctype.startswith("text/") or ctype in ("application/json",):
        ctype += "; charset=utf-8"
    headers = Headers(SECURITY_HEADERS)
    if real.suffix == ".html":
        del headers["Content-Security-Policy"]
        headers["Content-Security-Policy"] = csp_for(body)
    headers["Content-Type"] = ctype
    headers["Content-Length"] = str(len(body))
    return Response(200, "OK", headers, body)


__all__ = ["ALLOWED_METHODS", "CSP", "SECURITY_HEADERS", "WEB_ROOT", "csp_for", "static_response"]
