"""Slow links: compressed pages against raw ones through a bandwidth-limited proxy.

    python -m bench.slowlink [--rates 100 10] [--rtt-ms 20] [--runs 3] [--browser]

A text log (a synthetic web-server log with timestamps, paths, client
addresses, random request ids: it shrinks about 5x with zstd level 1 per
256 KiB page) and a random file of the same size go through
``bench/proxy.py`` at each rate (Mbit/s, each way) and round trip, to the
Python collector (sha256-verified) with and without ``compress=True``, and
with ``--browser`` to collector.js in Chromium too.  The ratio is the
compressed rate over the raw rate for the same file and link.  Sizes scale
with the rate so that a raw transfer takes about three seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, machine
from bench.suite import PY, make_file, receive, servers

MiB = 2**20

RECEIVER = """
import asyncio, sys, time, hashlib
from bridge.aio.client import connect
async def main(url, path, compress):
    t0 = time.perf_counter(); h = hashlib.sha256(); n = 0
    async with connect(url) as s:
        async with s.pages(path, compress=compress == "zstd") as st:
            async for p in st:
                h.update(p.data); n += len(p.data)
    print(n, h.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}")
asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


def make_log(path: Path, size: int, seed: int = 7) -> str:
    """A web-server log of ``size`` bytes; returns its sha256."""
    rng = random.Random(seed)
    paths = ["/api/v1/items/%d", "/api/v1/users/%d/orders", "/static/app.%d.js", "/login", "/health",
             "/search?q=term%d"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "curl/8.5.0",
              "Mozilla/5.0 (Macintosh) Safari/605.1", "python-requests/2.32"]
    levels = ["INFO"] * 20 + ["WARN"] * 2 + ["ERROR"]
    lines: list[bytes] = []
    total, clock = 0, 0.0
    while total < size:
        clock += rng.expovariate(50)
        hours, rest = divmod(clock, 3600)
        minutes, seconds = divmod(rest, 60)
        page = rng.choice(paths)
        if "%d" in page:
            page %= rng.randrange(100_000)
        line = (f"2026-11-27T{hours:02.0f}:{minutes:02.0f}:{seconds:06.3f}Z {rng.choice(levels):5} http "
                f"method={rng.choice(['GET'] * 5 + ['POST', 'PUT'])} path={page} "
                f"status={rng.choice([200] * 10 + [201, 204, 301, 304, 404, 500])} "
                f"bytes={rng.randrange(100, 200_000)} took_ms={rng.randrange(1, 900)} "
                f"client=10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                f"req={rng.getrandbits(64):016x} ua=\"{rng.choice(agents)}\"\n").encode()
        lines.append(line)
        total += len(line)
    data = b"".join(lines)[:size]
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def run(rates: list[float], rtt_ms: float, runs: int, browser: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pagebridge-slow-") as tmp:
        folder = Path(tmp)
        with servers(([PY, "-m", "bridge", "serve", str(folder), "--port", "0"],
                      r"websocket: ws://127.0.0.1:(\d+)/ws")) as (port,):
            for rate in rates:
                size = int(rate * 1e6 / 8 * 3) // MiB * MiB or MiB  # ~3 s raw
                files = {"log": make_log(folder / "log.txt", size),
                         "random": make_file(folder / "random.bin", size)}
                names = {"log": "log.txt", "random": "random.bin"}
                with servers(([PY, "-m", "bench.proxy", "0", port, str(rtt_ms), "--rate", str(rate)],
                              r"ready (\d+)")) as (proxy,), contextlib.ExitStack() as stack:
                    url = f"ws://127.0.0.1:{proxy}/ws"
                    page = None
                    if browser:
                        from bench import browser as browser_bench

                        page = stack.enter_context(browser_bench.viewer_page(f"http://127.0.0.1:{proxy}/"))
                    rates_of: dict[tuple[str, str, str], list[float]] = {}
                    for _ in range(runs):
                        for kind in ("log", "random"):
                            for codec in ("raw", "zstd"):
                                cmd = [PY, "-c", RECEIVER, url, names[kind], codec]
                                rates_of.setdefault(("python", kind, codec), []).append(
                                    receive(cmd, files[kind], size))
                            if page is not None:
                                for codec in ("raw", "zstd"):
                                    seconds = browser_bench.collector_seconds(page, names[kind], size,
                                                                              compress=codec == "zstd")
                                    rates_of.setdefault(("browser", kind, codec), []).append(size / seconds / MiB)
                    for (who, kind, codec), values in rates_of.items():
                        raw = statistics.median(rates_of[(who, kind, "raw")])
                        med = statistics.median(values)
                        rows.append({"system": f"{who} collector, {kind}, {codec} @{rate:g} Mbit/s",
                                     "median": med, "min": min(values), "max": max(values),
                                     "ratio_to_raw": med / raw, "size_mib": size / MiB, "unit": "MiB/s",
                                     "runs": values})
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="*", default=[100.0, 10.0], help="Mbit/s each way")
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="collector.js in Chromium too")
    args = parser.parse_args(argv)
    rows = run(args.rates, args.rtt_ms, args.runs, args.browser)
    print(f"\nSlow links, {args.rtt_ms:g} ms round trip, {args.runs} runs ({time.strftime('%Y-%m-%d %H:%M')})")
    print(f"{'system':52} {'median':>8} {'min':>8} {'max':>8} {'x raw':>6}")
    for r in rows:
        print(f"{r['system']:52} {r['median']:8.2f} {r['min']:8.2f} {r['max']:8.2f} {r['ratio_to_raw']:6.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "slowlink.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
