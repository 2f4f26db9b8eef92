"""Descriptors come back: streams cancelled at any moment leave no fd behind in the server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

#: Connects, says hello, opens a file four times (twice followed) and resets the TCP connection at
#: once (SO_LINGER 0), while the server is opening the file in its thread.
RESETS = """
import asyncio, socket, struct, sys
from websockets.asyncio.client import connect
from bridge.core import SUBPROTOCOL, messages as m
from bridge.aio.client import connect as session

async def reset_after_open(url):
    ws = await connect(url, subprotocols=[SUBPROTOCOL], compression=None)
    await ws.send(m.Hello().encode())
    await ws.recv()  # welcome: from now on the server acts on what we send
    for sid in range(1, 5):
        await ws.send(m.Open(stream=sid, path="f", window=1, follow=sid > 2).encode())
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()

async def main(url, count):
    for start in range(0, count, 100):
        await asyncio.gather(*[reset_after_open(url) for _ in range(min(100, count - start))])
    async with session(url) as s:  # and the server still serves
        print(len(await s.get_all_pages("f")), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def reset_connections(url: str, count: int) -> bytes:
    return subprocess.run([sys.executable, "-c", RESETS, url, str(count)], capture_output=True,
                          cwd=REPO, timeout=120, check=True).stdout


def test_thousand_connections_reset_right_after_open_leak_no_fd(root: Path, server_process) -> None:
    """1 000 connections reset right after `open`: the server's fd count returns to its baseline."""
    (root / "f").write_bytes(os.urandom(1 << 20))
    server = server_process()
    url = server.start()
    assert server.proc is not None
    reset_connections(url, 5)  # warm up: worker threads, lazily opened files
    time.sleep(0.5)
    baseline = open_fds(server.proc.pid)
    assert reset_connections(url, 1000) == b"1048576\n"
    deadline = time.monotonic() + 20
    while open_fds(server.proc.pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(server.proc.pid) == baseline
