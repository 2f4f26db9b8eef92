"""``python -m bench.attacks``: server RSS and descriptors under hostile peers, with a healthy
client's latency beside each (issue 10's scenarios; a benchmark, not a test: nothing asserts).

Scenarios, each against a fresh ``pagebridge serve`` process on 127.0.0.1:

* paused: 1 000 connections x 16 streams that read every page but never ack;
* silent: 20 connections x 64 streams of 4 MiB pages, window 256, that never read;
* pings: 5 connections that never say hello or read, only ping, for 10 s;
* lists: 1 000 ``list`` requests of a 100 000-entry folder on one connection.

For each: the server's RSS before, its peak during the attack, its descriptors during and
after, and the seconds a healthy client needs to list the root and fetch a 1 MiB file while
the attack runs.  Everything targets 127.0.0.1, is bounded in count and time, and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import psutil
from websockets.asyncio.client import connect as ws_connect

from bench.harness import start

MIB = 1 << 20
SUBPROTOCOL = "pagebridge.v1"


def pack(**body: Any) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


class Sampler:
    """Peak RSS of a process, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


async def healthy(url: str) -> float:
    """Seconds to connect, list the root and fetch the 1 MiB file, verified."""
    from bridge.aio.client import connect

    started = time.monotonic()
    async with connect(url, open_timeout=60) as session:
        await session.list("")
        data = await session.get_all_pages("ok")
    assert len(data) == MIB
    return time.monotonic() - started


async def paused(url: str) -> list[Any]:
    peers = []

    async def drain(ws: Any) -> None:  # reads every page it is sent, acks none
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    for _ in range(1000):
        ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None)  # type: ignore[list-item]
        await ws.send(pack(t="hello"))
        for sid in range(1, 17):
            await ws.send(pack(t="open", stream=sid, path="big", window=1, page_size=256 * 1024))
        peers.append(ws)
        ws.drainer = asyncio.create_task(drain(ws))  # type: ignore[attr-defined]
    return peers


async def silent(url: str) -> list[Any]:
    peers = []
    for _ in range(20):
        ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_queue=1)  # type: ignore[list-item]
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await ws.send(pack(t="hello"))
        await asyncio.sleep(0.02)
        ws.transport.pause_reading()
        for sid in range(1, 65):
            await ws.send(pack(t="open", stream=sid, path="big", window=256, page_size=4 * MIB))
        peers.append(ws)
    return peers


async def pings(url: str) -> list[Any]:
    peers = []
    for _ in range(5):
        ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_queue=1)  # type: ignore[list-item]
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws.transport.pause_reading()
        peers.append(ws)

    async def flood(ws: Any) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ws.transport.is_closing():
            try:
                await ws.ping(b"x" * 100)
            except Exception:
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(flood(ws) for ws in peers))
    return peers


async def lists(url: str) -> list[Any]:
    ws = await ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None)  # type: ignore[list-item]
    await ws.send(pack(t="hello"))
    for rid in range(1000):
        await ws.send(pack(t="list", id=rid, path="many"))
    return [ws]


SCENARIOS = {"paused": paused, "silent": silent, "pings": pings, "lists": lists}


async def run(name: str, root: Path, extra: list[str]) -> dict[str, Any]:
    proc, url = start([sys.executable, "-m", "bridge", "serve", str(root), "--port", "0",
                       "--max-connections", "1100", *extra], r"websocket: (ws\S+)")
    try:
        server = psutil.Process(proc.pid)
        await healthy(url)
        base_rss, base_fds = server.memory_info().rss, server.num_fds()
        sampler = Sampler(proc.pid)
        attack = asyncio.create_task(SCENARIOS[name](url))
        await asyncio.sleep(1.0)
        latency = await healthy(url)
        peers = await attack
        await asyncio.sleep(2.0)
        during_fds = server.num_fds()
        latency_after = await healthy(url)
        peak = sampler.stop()
        for ws in peers:
            ws.transport.abort()
            drainer = getattr(ws, "drainer", None)
            if drainer is not None:
                drainer.cancel()
        await asyncio.sleep(2.0)
        return {"scenario": name, "rss_before_mib": base_rss / MIB, "rss_peak_mib": peak / MIB,
                "fds_before": base_fds, "fds_during": during_fds, "fds_after": server.num_fds(),
                "healthy_s": latency, "healthy_late_s": latency_after}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with open(root / "big", "wb") as f:
            f.truncate(1 << 30)
        (root / "ok").write_bytes(os.urandom(MIB))
        if "lists" in args.only:
            (root / "many").mkdir()
            for i in range(100_000):
                (root / "many" / f"{i:06d}").touch()
        print(f"{'scenario':8} {'RSS before':>10} {'RSS peak':>9} {'fds before':>10} {'during':>7} "
              f"{'after':>6} {'healthy s':>9} {'later s':>8}")
        for name in args.only:
            extra = ["--write-timeout", "5", "--handshake-timeout", "5"]
            r = asyncio.run(run(name, root, extra))
            print(f"{name:8} {r['rss_before_mib']:10.0f} {r['rss_peak_mib']:9.0f} {r['fds_before']:10d} "
                  f"{r['fds_during']:7d} {r['fds_after']:6d} {r['healthy_s']:9.2f} "
                  f"{r['healthy_late_s']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
