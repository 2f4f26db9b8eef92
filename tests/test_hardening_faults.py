"""Faults: killed peers, files changing under the pager, read errors, silent peers, floods, TLS."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from bridge.aio.client import connect
from bridge.core import SUBPROTOCOL
from bridge.core import messages as m
from bridge.errors import ErrorCode, FileChangedError, PagebridgeError, StreamError
from bridge.sources.base import Pager
from bridge.sources.files import FilePager
from tests.conftest import REPO

HOLD_STREAM = """
import asyncio, sys
from bridge.aio.client import connect
async def main():
    async with connect(sys.argv[1]) as s:
        streams = [s.pages(name, window=1, page_size=4096) for name in sys.argv[2:]]
        for stream in streams:
            await stream.__anext__()
        print("holding", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_killed_collector_releases_server_fds(root: Path, server_process) -> None:
    """A collector killed mid-stream (3 open files): the server's fd count returns to its baseline."""
    for name in "abc":
        (root / name).write_bytes(os.urandom(1 << 20))
    server = server_process()
    url = server.start()
    assert server.proc is not None
    baseline = open_fds(server.proc.pid)
    child = subprocess.Popen([sys.executable, "-c", HOLD_STREAM, url, "a", "b", "c"],
                             stdout=subprocess.PIPE, cwd=REPO)
    assert child.stdout is not None and child.stdout.readline() == b"holding\n"
    during = open_fds(server.proc.pid)
    assert during >= baseline + 4  # a socket and three files
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    deadline = time.monotonic() + 10
    while open_fds(server.proc.pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(server.proc.pid) == baseline


SLOW_DOWNLOAD = """
import asyncio, sys, time
from bridge.aio.client import connect
async def main():
    async with connect(sys.argv[1]) as s:
        await s.download("big.bin", sys.argv[2], page_size=65536, window=2,
                         progress=lambda done, total: time.sleep(0.003))
asyncio.run(main())
"""


def test_server_killed_and_restarted_mid_download_resumes_identically(root: Path, server_process,
                                                                      tmp_path: Path) -> None:
    """The server dies mid-download; after its restart, download(resume=True) completes byte-identical."""
    data = os.urandom(6 * 2**20)
    (root / "big.bin").write_bytes(data)
    server = server_process()
    url = server.start()
    dest = tmp_path / "big.bin"
    part = tmp_path / "big.bin.part"
    child = subprocess.Popen([sys.executable, "-c", SLOW_DOWNLOAD, url, str(dest)], cwd=REPO,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 2**20):
        time.sleep(0.01)
    server.kill()
    assert child.wait(20) != 0  # the client saw the connection drop
    assert child.stderr is not None and b"ConnectionClosedError" in child.stderr.read()
    partial = part.stat().st_size
    assert 0 < partial < len(data)
    server.start()  # same port, same file
    result = subprocess.run([sys.executable, "-m", "bridge", "get", url, "big.bin", "-o", str(dest)],
                            capture_output=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"resumed {dest} at byte {partial}".encode() in result.stderr
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_file_truncated_while_paged_is_file_changed(root: Path, start_server) -> None:
    """A file truncated under a (non-follow) stream ends it with file_changed, never short data."""
    path = root / "f"
    path.write_bytes(os.urandom(1 << 20))
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        got = bytearray()
        with pytest.raises(FileChangedError) as info:
            async with session.pages("f", window=1, page_size=65536) as stream:
                async for page in stream:
                    got += page.data
                    if len(got) == 65536:
                        with open(path, "r+b") as f:
                            f.truncate(100_000)
        assert "shrank" in info.value.message
        assert len(got) < 1 << 20


async def test_file_replaced_or_deleted_while_paged_gives_the_announced_version(root: Path, start_server) -> None:
    """A file replaced by rename, or deleted, mid-stream: the stream delivers exactly the version it announced."""
    path = root / "f"
    original = os.urandom(1 << 20)
    path.write_bytes(original)
    server = await start_server(root)
    async with connect(server.ws_url) as session:
        for change in ("replace", "delete"):
            path.write_bytes(original)
            got = bytearray()
            async with session.pages("f", window=1, page_size=65536) as stream:
                async for page in stream:
                    got += page.data
                    if len(got) == 65536:
                        if change == "replace":
                            (root / "new").write_bytes(b"other" * 1000)
                            os.replace(root / "new", path)
                        else:
                            path.unlink()
            assert bytes(got) == original, change


async def test_read_error_ends_stream_with_io_error_connection_lives(root: Path, start_server) -> None:
    """An OSError (EIO) from the disk ends that stream with io_error; the connection keeps serving."""
    (root / "ok").write_bytes(b"fine")
    (root / "bad").write_bytes(os.urandom(300_000))

    class FailingDisk(FilePager):
        def _read_into(self, view: memoryview, pos: int, flags: int) -> int:
            if pos >= 100_000:
                raise OSError(errno.EIO, "Input/output error")
            return super()._read_into(view, pos, flags)

    server = await start_server(root)
    server.mount("bad", lambda request: FailingDisk(root / "bad", name="bad"))
    async with connect(server.ws_url) as session:
        with pytest.raises(StreamError) as info:
            await session.get_all_pages("bad", page_size=50_000, window=1)
        assert info.value.code is ErrorCode.IO_ERROR
        assert "Input/output error" in info.value.message
        assert await session.get_all_pages("ok") == b"fine"


async def test_peer_that_stops_answering_pings_is_dropped(root: Path, start_server) -> None:
    """A client that no longer reads (so never answers pings) is dropped after ping + close timeouts."""
    server = await start_server(root, ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
    ws = await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL], ping_interval=None)
    await ws.send(m.Hello().encode())
    await ws.recv()
    assert len(server.connections) == 1
    ws.transport.pause_reading()  # frozen peer: nothing read, no pong
    deadline = time.monotonic() + 5
    while server.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not server.connections
    ws.transport.abort()


async def test_connection_limit_refuses_cleanly(root: Path, start_server) -> None:
    """Beyond max_connections a handshake gets HTTP 503; established collectors keep working."""
    (root / "f").write_bytes(b"x" * 100_000)
    server = await start_server(root, max_connections=3)
    sessions = [await connect(server.ws_url) for _ in range(3)]
    with pytest.raises(PagebridgeError) as info:
        await connect(server.ws_url)
    assert "HTTP 503" in info.value.message
    for session in sessions:
        assert len(await session.get_all_pages("f")) == 100_000
        await session.close()


async def test_connection_flood_does_not_starve_established_collector(root: Path, start_server) -> None:
    """A client opening connections as fast as it can is refused; a running transfer completes intact."""
    data = os.urandom(8 * 2**20)
    (root / "f").write_bytes(data)
    server = await start_server(root, max_connections=20)
    refused = accepted = 0
    stop = asyncio.Event()

    async def flood() -> None:
        nonlocal refused, accepted
        held = []
        while not stop.is_set() and refused + accepted < 400:
            try:
                held.append(await ws_connect(server.ws_url, subprotocols=[SUBPROTOCOL], open_timeout=5))
                accepted += 1
            except websockets.InvalidStatus as exc:
                assert exc.response.status_code == 503
                refused += 1
        for ws in held:
            ws.transport.abort()

    async with connect(server.ws_url) as session:
        flooder = asyncio.create_task(flood())
        got = await asyncio.wait_for(session.get_all_pages("f", page_size=65536), 60)
        stop.set()
        await flooder
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert accepted <= 19 and refused > 0


def test_thousand_never_acking_collectors_keep_memory_bounded(root: Path, server_process) -> None:
    """1000 connected collectors, each holding a stream it never acknowledges: server RSS stays bounded."""
    (root / "f").write_bytes(os.urandom(4 * 2**20))
    server = server_process("--max-connections", "2000")
    url = server.start()
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    rss_before = proc.memory_info().rss
    script = f"""
import asyncio, resource
from bridge.aio.client import connect
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
async def one():
    s = await connect({url!r})
    st = s.pages("f", window=1, page_size=16384)
    await st.__anext__()
    return s
async def main():
    sessions = []
    for i in range(0, 1000, 100):
        sessions += await asyncio.gather(*[one() for _ in range(100)])
    print(len(sessions), flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"1000\n"
        time.sleep(0.5)
        grown = proc.memory_info().rss - rss_before
        # Per collector: a connection, a 16 KiB page in flight, an open file: well under 100 KiB.
        assert grown < 1000 * 100 * 1024, grown
        print(f"\nserver RSS growth with 1000 stalled collectors: {grown / 2**20:.1f} MiB")
    finally:
        child.kill()
        child.wait(10)


async def test_tls_with_a_private_ca(root: Path, start_server) -> None:
    """wss:// with a certificate from a throwaway CA (trustme): the client verifies and transfers."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    (root / "f").write_bytes(b"secret bytes")
    server = await start_server(root, ssl=server_context)
    assert server.ws_url.startswith("wss://")
    async with connect(server.ws_url, ssl=client_context) as session:
        assert await session.get_all_pages("f") == b"secret bytes"
    from bridge.errors import ConnectionClosedError

    with pytest.raises(ConnectionClosedError, match="certificate verify failed"):
        async with connect(server.ws_url) as session:  # system trust store: not our CA
            pass


async def test_viewer_http_headers(root: Path, start_server) -> None:
    """The viewer's responses carry a CSP, nosniff, no caching; unknown paths are 404."""
    import urllib.request

    server = await start_server(root)

    def fetch(path: str):
        try:
            with urllib.request.urlopen(server.http_url.rstrip("/") + path) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    status, headers = await asyncio.to_thread(fetch, "/")
    assert status == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval' 'sha256-" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-cache"
    status, _ = await asyncio.to_thread(fetch, "/../bridge/server.py")
    assert status == 404
    status, _ = await asyncio.to_thread(fetch, "/.hidden")
    assert status == 404


async def test_disconnect_fails_completion_of_custom_pager(root: Path, start_server) -> None:
    """A custom pager's wait() raises when its collector vanishes (PB never fired its callback)."""
    made: list[Pager] = []

    class Endless(Pager):
        async def next_page(self, size: int) -> bytes:
            await asyncio.sleep(0.001)
            return b"e" * 100

    server = await start_server(root)
    server.mount("endless", lambda request: made.append(Endless()) or made[-1])
    session = await connect(server.ws_url)
    stream = session.pages("endless", window=2)
    await stream.__anext__()
    session.ws.transport.abort()
    with pytest.raises(PagebridgeError) as info:
        await asyncio.wait_for(made[0].wait(), 5)
    assert info.value.code is ErrorCode.CANCELLED
