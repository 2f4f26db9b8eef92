"""Cost of FilePager's one-version check (one ``fstat`` after every read).

Two measures, each alternating both variants and reporting medians:

* the loop alone: ``pread`` of 256 KiB pages over a warm 256 MiB file, with
  and without an ``fstat`` after each read;
* end to end: the same file through a ``PageServer`` in its own process to a
  Python collector, paged by ``FilePager`` and by a copy without the check.

    python -m bench.version_check [--size-mib 256] [--runs 7]
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

from bench.harness import start

PAGE = 256 * 1024

SERVER = r'''
import asyncio, os, sys
from bridge.aio.server import PageServer, run_server
from bridge.errors import FileChangedError
from bridge.sources.files import FilePager

class Unchecked(FilePager):
    """FilePager without the per-read fstat (the check this script prices)."""
    def _read(self, pos, want):
        with self._fd_lock:
            data = os.pread(self.fd, want, pos)
        if len(data) < want:
            raise FileChangedError("shrank")
        return data

big = os.path.join(sys.argv[1], "big")
server = PageServer(sys.argv[1], port=0)
server.mount("unchecked", lambda request: Unchecked(big, name="big"))
server.mount("checked", lambda request: FilePager(big, name="big"))
asyncio.run(run_server(server, on_ready=lambda s: print("url", s.ws_url, flush=True)))
'''


def loop(fd: int, size: int, check: bool) -> float:
    started = time.perf_counter()
    for pos in range(0, size, PAGE):
        os.pread(fd, PAGE, pos)
        if check:
            os.fstat(fd)
    return time.perf_counter() - started


async def end_to_end(url: str, runs: int) -> dict[str, list[float]]:
    from bridge.aio.client import connect

    times: dict[str, list[float]] = {"checked": [], "unchecked": []}
    async with connect(url) as session:
        for _ in range(runs):
            for name in times:
                started = time.perf_counter()
                await session.get_all_pages(name)
                times[name].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big"
        path.write_bytes(os.urandom(size))
        fd = os.open(path, os.O_RDONLY)
        loop(fd, size, False)
        plain, checked = [], []
        for _ in range(args.runs):
            plain.append(loop(fd, size, False))
            checked.append(loop(fd, size, True))
        os.close(fd)
        a, b = statistics.median(plain), statistics.median(checked)
        pages = size // PAGE
        print(f"loop: pread {a * 1e3:.1f} ms, pread+fstat {b * 1e3:.1f} ms per {args.size_mib} MiB: "
              f"+{(b - a) / pages * 1e6:.2f} us per page (+{(b - a) / a * 100:.1f} %)")
        proc, url = start([sys.executable, "-c", SERVER, folder], r"url (\S+)")
        try:
            times = asyncio.run(end_to_end(url, args.runs))
        finally:
            proc.terminate()
            proc.wait(10)
    for name, values in times.items():
        med = statistics.median(values)
        print(f"end to end, {name:9}: median {med * 1e3:.0f} ms ({args.size_mib / med:.0f} MiB/s), "
              f"min {min(values) * 1e3:.0f}, max {max(values) * 1e3:.0f}")
    ratio = statistics.median(times["checked"]) / statistics.median(times["unchecked"])
    print(f"end to end, checked/unchecked median time: {ratio:.3f}")


if __name__ == "__main__":
    main()
