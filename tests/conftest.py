"""Shared fixtures: real servers on 127.0.0.1, real files in temp folders.

* ``root``: a fresh folder to serve.
* ``start_server``: ``await start_server(root, **options)`` runs a
  PageServer in the test's event loop on port 0; it is closed after the test.
* ``server_process``: runs ``python -m bridge serve`` in a subprocess on a
  free port and returns its ws URL (for kill/restart tests).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.aio.server import PageServer
from tests.browser_support import browser, page, threaded_server  # noqa: F401  (browser test fixtures)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    servers: list[PageServer] = []

    async def start(root: Path, **options: Any) -> PageServer:
        options.setdefault("port", 0)
        server = PageServer(root, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


class ServerProcess:
    """A ``pagebridge serve`` subprocess; restartable on the same port."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.args = args
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "bridge", "serve", str(self.root), "--port", str(self.port),
               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            match = re.search(r"websocket: (ws\S+)", line)
            if match:
                self.url = match.group(1)
                self.port = int(re.search(r":(\d+)/ws", self.url).group(1))  # type: ignore[union-attr]
                return self.url
        raise RuntimeError("server did not print its URL in time")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def server_process(root: Path) -> Iterator[Callable[..., ServerProcess]]:
    procs: list[ServerProcess] = []

    def make(*args: str, folder: Path | None = None) -> ServerProcess:
        proc = ServerProcess(folder or root, *args)
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        proc.kill()
