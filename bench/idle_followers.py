"""Idle followers: what N followers cost a server while nothing is written.

For each watcher (``PAGEBRIDGE_WATCHER``: ``auto``, inotify read by the
event loop on Linux; ``watchfiles``, the polling watcher used before) and
each layout (N files in one folder; one file in each of N folders), this
starts ``pagebridge serve`` in its own process, opens N follow streams
from this process (one connection), waits until every follower has the
file's first line, then measures over ``--seconds``: the server's CPU
seconds (user + system, from /proc), its threads and descriptors beyond
what it had before the followers (after one warm-up follower).  Then it
appends a line to every file at once and times until all N followers have
it (the fan-out wake-up).  Watchers alternate, run after run; the table
gives medians.

    python -m bench.idle_followers [--followers 64] [--seconds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.harness import start

WATCHERS = ("auto", "watchfiles")
LAYOUTS = ("1 folder", "N folders")


def make_files(root: Path, layout: str, n: int) -> list[str]:
    """N log files, all in one folder or one per folder; returns their collector paths."""
    names = []
    for i in range(n):
        name = f"f{i:03d}.log" if layout == "1 folder" else f"d{i:03d}/app.log"
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"start\n")
        names.append(name)
    return names


async def follow(session: Any, name: str, ready: asyncio.Event, wanted: bytes) -> float:
    """Follow ``name`` until ``wanted`` arrives; returns when (perf_counter)."""
    from bridge.core import messages as m

    got = bytearray()
    async with session.pages(name, follow=True) as stream:
        async for item in stream:
            if isinstance(item, m.Page):
                got += item.data
                if got == b"start\n":
                    ready.set()
                if got.endswith(wanted):
                    return time.perf_counter()
    raise RuntimeError(f"{name} ended")


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def one_run(url: str, root: Path, names: list[str], proc: psutil.Process,
                  seconds: float) -> dict[str, float]:
    from bridge.aio.client import connect

    async with connect(url) as session:
        # Warm-up: one follower, so worker threads and lazy imports are in the baseline.
        warm = asyncio.Event()
        task = asyncio.create_task(follow(session, names[0], warm, b"never\n"))
        await asyncio.wait_for(warm.wait(), 30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(1)
        threads, fds = proc.num_threads(), proc.num_fds()
        readies = [asyncio.Event() for _ in names]
        tasks = [asyncio.create_task(follow(session, name, ready, b"appended\n"))
                 for name, ready in zip(names, readies, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        await asyncio.sleep(1.5)  # past the watchers' settling time
        threads_idle, fds_idle = proc.num_threads(), proc.num_fds()
        before, t0 = cpu_seconds(proc), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = cpu_seconds(proc) - before, time.monotonic() - t0
        written = time.perf_counter()
        for name in names:
            with open(root / name, "ab") as f:
                f.write(b"appended\n")
        arrivals = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return {"cpu_s": cpu, "cpu_pct": 100 * cpu / wall, "threads": threads_idle - threads,
            "fds": fds_idle - fds, "wake_all_ms": 1000 * (max(arrivals) - written)}


def run(watcher: str, layout: str, n: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pagebridge-idle-") as tmp:
        root = Path(tmp)
        names = make_files(root, layout, n)
        server, url = start([sys.executable, "-m", "bridge", "serve", tmp, "--port", "0"],
                            r"websocket: (\S+)", env={**os.environ, "PAGEBRIDGE_WATCHER": watcher})
        try:
            return asyncio.run(one_run(url, root, names, psutil.Process(server.pid), seconds))
        finally:
            server.kill()
            server.wait(10)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--watchers", nargs="+", default=list(WATCHERS), choices=["auto", "watchfiles", "poll"])
    args = parser.parse_args(argv)
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for i in range(args.runs):
        for layout in LAYOUTS:
            order = args.watchers if i % 2 == 0 else args.watchers[::-1]
            for watcher in order:
                result = run(watcher, layout, args.followers, args.seconds)
                print(f"run {i + 1} {layout:9} {watcher:10} " +
                      " ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
                samples.setdefault((layout, watcher), []).append(result)
    rows: list[dict[str, object]] = []
    for (layout, watcher), results in samples.items():
        row: dict[str, object] = {"followers": args.followers,
                                  "layout": layout.replace("N", str(args.followers)), "watcher": watcher}
        for key in results[0]:
            values = [r[key] for r in results]
            row[key] = statistics.median(values)
            if key == "cpu_s":
                row["cpu_s_min_max"] = f"{min(values):.2f}-{max(values):.2f}"
        rows.append(row)
    print(f"\nIdle followers over {args.seconds:.0f} s (median of {args.runs} runs)\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return rows


if __name__ == "__main__":
    main()
