"""The pagebridge command, run as real subprocesses against a real server process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CLI = [sys.executable, "-m", "bridge"]


def run(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=timeout, cwd=REPO, **kwargs)


@pytest.mark.parametrize("command", [[], ["serve"], ["ls"], ["get"], ["cat"], ["tail"]])
def test_help_everywhere(command: list[str]) -> None:
    """--help works for the command and every subcommand."""
    result = run(*command, "--help")
    assert result.returncode == 0
    assert b"usage: pagebridge" in result.stdout


def test_serve_prints_urls_and_stops_gracefully(root: Path, server_process) -> None:
    """serve --port 0 prints the real viewer and WebSocket URLs; SIGTERM stops it with status 0."""
    server = server_process()
    url = server.start()
    assert url.startswith("ws://127.0.0.1:") and url.endswith("/ws") and server.port > 0
    assert server.stop() == 0


def test_ls_get_cat(root: Path, server_process, tmp_path: Path) -> None:
    """ls lists, get downloads byte-identical (with --sha256), cat writes to stdout."""
    data = os.urandom(3 * 2**20 + 11)
    (root / "data.bin").write_bytes(data)
    (root / "notes.txt").write_text("one\ntwo\n")
    (root / "docs").mkdir()
    url = server_process().start()

    listing = run("ls", url)
    assert listing.returncode == 0
    names = [line.split()[-1] for line in listing.stdout.decode().splitlines()]
    assert names == ["docs/", "data.bin", "notes.txt"]

    out = tmp_path / "copy.bin"
    got = run("get", url, "data.bin", "-o", str(out), "--sha256")
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == data
    assert got.stdout.decode().split()[0] == hashlib.sha256(data).hexdigest()

    cat = run("cat", url, "notes.txt")
    assert (cat.returncode, cat.stdout) == (0, b"one\ntwo\n")
    part = run("cat", url, "notes.txt", "--offset", "4", "--length", "3")
    assert part.stdout == b"two"


def test_http_url_is_accepted(root: Path, server_process) -> None:
    """The viewer's http:// URL works for client commands too."""
    (root / "a.txt").write_text("a")
    server = server_process()
    server.start()
    result = run("cat", f"http://127.0.0.1:{server.port}/", "a.txt")
    assert result.stdout == b"a"


def test_errors_are_one_line_and_non_zero(root: Path, server_process) -> None:
    """A refused path prints one line with its code on stderr and exits 1."""
    url = server_process().start()
    result = run("cat", url, "../etc/passwd")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["pagebridge: forbidden: '..' is not allowed in paths"]
    missing = run("get", url, "nope.bin", "-o", "/tmp/never-written")
    assert missing.returncode == 1 and b"not_found" in missing.stderr
    assert not Path("/tmp/never-written").exists()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    """A server that is not there: one clear line, exit 1, no traceback."""
    with socket_port() as port:
        pass
    result = run("ls", f"ws://127.0.0.1:{port}/ws")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0]


def test_non_loopback_without_token_refuses_to_start(root: Path) -> None:
    """serve --host 0.0.0.0 without a token exits 2 with an explanation."""
    result = run("serve", str(root), "--host", "0.0.0.0", "--port", "0", timeout=20)
    assert result.returncode == 2
    assert b"without a token" in result.stderr


def test_token_from_environment(root: Path, server_process) -> None:
    """PAGEBRIDGE_TOKEN protects the server and authenticates the client."""
    (root / "t.txt").write_text("t")
    env = {**os.environ, "PAGEBRIDGE_TOKEN": "tok"}
    server = server_process("--token", "tok")
    url = server.start()
    assert run("cat", url, "t.txt").returncode == 1
    assert run("cat", url, "t.txt", env=env).stdout == b"t"


SLOW_GET = """
import asyncio, sys, time
import bridge
from bridge.aio.client import connect
async def main():
    async with connect(sys.argv[1]) as s:
        def slow(done, total):
            time.sleep(0.005)  # a slow disk: the test kills us half-way
        await s.download("big.bin", sys.argv[2], progress=slow, page_size=65536, window=2)
asyncio.run(main())
"""


def test_resumed_download_after_killed_client_is_identical(root: Path, server_process, tmp_path: Path) -> None:
    """A download killed half-way and run again with resume produces the identical file."""
    data = os.urandom(8 * 2**20)
    (root / "big.bin").write_bytes(data)
    url = server_process().start()
    dest = tmp_path / "big.bin"
    part = tmp_path / "big.bin.part"
    child = subprocess.Popen([sys.executable, "-c", SLOW_GET, url, str(dest)], cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 2 * 2**20):
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    partial = part.stat().st_size
    assert 0 < partial < len(data) and not dest.exists()
    result = run("get", url, "big.bin", "-o", str(dest), "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resumed {dest} at byte {partial}".encode() in result.stderr
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


class socket_port:
    """A port that was free a moment ago (for 'connection refused' tests)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_ls_and_errors_neutralise_terminal_escapes_in_names(root: Path, server_process) -> None:
    """Names with ESC/OSC, C1 controls or bidi overrides print as inert escapes; so do error messages."""
    for name in (b"osc\x1b]0;pwned\x07", b"csi\xc2\x9b31mred", "bidi\u202etxt.exe".encode(), b"plain"):
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            f.write(b"x")
    url = server_process().start()
    listing = run("ls", url)
    assert listing.returncode == 0
    out = listing.stdout.decode()
    assert not any(ch < " " and ch != "\n" or "\x7f" <= ch <= "\x9f" or ch == "\u202e" for ch in out), out
    names = [line.split("  ")[-1] for line in out.splitlines()]
    # \x1b and \x07 are escaped by the server (docs/protocol.md §5); U+009B and U+202E by the CLI.
    assert names == ["bidi\\u202etxt.exe", "csi\\x9b31mred", "osc\\x1b]0;pwned\\x07", "plain"]
    missing = run("cat", url, "gone\u009b2J\u202e")
    assert missing.returncode == 1
    assert missing.stderr == b"pagebridge: not_found: gone\\x9b2J\\u202e does not exist\n"
