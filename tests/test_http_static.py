"""The viewer's static files over HTTP: GET and HEAD only, regular files only, the protocol's path rules."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.aio.server import PageServer
from tests.conftest import REPO


async def http(port: int, request: bytes, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request; return status, headers and every byte after them until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def req(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


@pytest.fixture
async def web(tmp_path: Path) -> Any:
    root = tmp_path / "root"
    root.mkdir()
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<p>viewer</p>")
    (web / "app.js").write_text("export {};\n")
    (web / "sub").mkdir()
    (web / "sub" / "index.html").write_text("<p>sub</p>")
    (web / "empty").mkdir()
    (web / ".hidden").write_text("hidden")
    (tmp_path / "secret.txt").write_text("SECRET")
    (web / "out.txt").symlink_to(tmp_path / "secret.txt")
    server = PageServer(root, port=0, web_root=web)
    await server.start()
    yield server
    await server.close()


async def test_get_and_head(web) -> None:
    """GET answers the file; HEAD the same status and headers with no body at all."""
    status, headers, body = await http(web.port, req("GET", "/app.js"))
    assert (status, body) == (200, b"export {};\n")
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Content-Length"] == "11"
    head_status, head_headers, head_body = await http(web.port, req("HEAD", "/app.js"))
    assert (head_status, head_body) == (200, b"")
    assert head_headers["Content-Length"] == "11"
    assert {k: v for k, v in head_headers.items() if k != "Date"} == \
        {k: v for k, v in headers.items() if k != "Date"}
    assert (await http(web.port, req("HEAD", "/missing")))[::2] == (404, b"")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
async def test_other_methods_are_405_with_allow(web, method: str) -> None:
    """Any method but GET and HEAD gets 405 and `Allow: GET, HEAD`, never the file."""
    status, headers, body = await http(web.port, req(method, "/index.html"))
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert body == f"method {method} is not allowed\n".encode()


async def test_path_rules_are_the_protocol_s(web) -> None:
    """Folders give their index.html; '..', dot files, links out of the root, empty folders: 404."""
    assert (await http(web.port, req("GET", "/")))[::2] == (200, b"<p>viewer</p>")
    assert (await http(web.port, req("GET", "/sub/")))[::2] == (200, b"<p>sub</p>")
    assert (await http(web.port, req("GET", "/index.html?v=1")))[::2] == (200, b"<p>viewer</p>")
    for path in ("/../secret.txt", "/sub/../../secret.txt", "/.hidden", "/out.txt", "/empty",
                 "/%2e%2e/secret.txt", "/a\\..\\secret.txt", "/missing"):
        status, _, body = await http(web.port, req("GET", path))
        assert (status, body) == (404, b"not found\n"), path


SERVE_WEB = """
import asyncio, sys
from pathlib import Path
from bridge.aio.server import PageServer, run_server
server = PageServer(sys.argv[1], port=0, web_root=Path(sys.argv[2]))
asyncio.run(run_server(server, on_ready=lambda s: print(s.port, flush=True)))
"""


async def test_fifo_in_the_web_root_never_blocks_the_server(tmp_path: Path) -> None:
    """GET of a FIFO with no writer is a prompt 404, and the server keeps answering (own process)."""
    (tmp_path / "root").mkdir()
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("ok")
    os.mkfifo(web / "pipe")
    proc = subprocess.Popen([sys.executable, "-c", SERVE_WEB, str(tmp_path / "root"), str(web)],
                            stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(3):
            assert (await http(port, req("GET", "/pipe")))[::2] == (404, b"not found\n")
            assert (await http(port, req("GET", "/index.html")))[::2] == (200, b"ok")
    finally:
        proc.kill()
        proc.wait(10)
