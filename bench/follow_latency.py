"""Follow latency: from the write of one line to its arrival in a Python collector.

The server runs in its own process (``pagebridge serve``); this process
follows a log with the Python collector and appends one line at a time,
waiting for each to arrive before writing the next.  Reports p50/p99/max
over ``--lines`` lines (target: p50 <= 10 ms, p99 <= 50 ms).

    python -m bench.follow_latency [--lines 1000] [--watcher auto|watchfiles|poll]

``--watcher`` sets the server's ``PAGEBRIDGE_WATCHER`` (bridge/sources/watch.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import RESULTS, machine, start


async def measure(url: str, log: Path, lines: int) -> list[float]:
    from bridge.aio.client import connect
    from bridge.core import messages as m

    latencies = []
    async with connect(url) as session:
        async with session.pages(log.name, follow=True, text=True, window=4) as stream:
            items = stream.__aiter__()
            with open(log, "ab", buffering=0) as f:
                for i in range(lines):
                    t0 = time.perf_counter()
                    f.write(b"line %06d\n" % i)
                    while True:
                        item = await items.__anext__()
                        if not isinstance(item, m.Event):
                            break
                    latencies.append(time.perf_counter() - t0)
                    assert item.data == b"line %06d\n" % i, item.data
                    await asyncio.sleep(0.002)  # lines arrive one by one, not in bursts
    return latencies


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--watcher", default="auto", choices=["auto", "watchfiles", "poll"],
                        help="how the server watches the log's folder (PAGEBRIDGE_WATCHER)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        log = Path(tmp) / "follow.log"
        log.write_bytes(b"")
        server, url = start([sys.executable, "-m", "bridge", "serve", tmp, "--port", "0"], r"websocket: (\S+)",
                            env={**os.environ, "PAGEBRIDGE_WATCHER": args.watcher})
        try:
            latencies = asyncio.run(measure(url, log, args.lines))
        finally:
            server.kill()
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"\nFollow latency ({args.watcher}) over {len(ms)} lines (ms): p50 {p50:.2f}  p99 {p99:.2f}  max {ms[-1]:.2f}"
          f"  (targets: p50 <= 10, p99 <= 50)")
    result = {"scenario": "follow_latency", "watcher": args.watcher, "lines": len(ms), "p50_ms": p50, "p99_ms": p99,
              "max_ms": ms[-1], "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "follow_latency.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
