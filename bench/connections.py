"""What one connection costs: ``python -m bench.connections [--count 1000] [--profile client|server]``.

A server process (``pagebridge serve``, or the same server under cProfile)
and a client process that runs ``--count`` cycles of connect, open a 4 KiB
file, read it, close, ``--concurrency`` at a time.  Prints the CPU seconds
each process spent per connection (ms), and with ``--profile`` the top of
that side's cProfile.  ``--shared`` runs the same cycles as sessions of one
:class:`bridge.Pool` (connections shared), for comparison.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.harness import REPO, start

PY = sys.executable

CLIENT = """
import asyncio, cProfile, pstats, sys, time
from bridge.aio.client import connect
count, concurrency, profile, shared = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
async def cycles(url, n, pool):
    for _ in range(n):
        opener = pool.connect() if pool is not None else connect(url)
        async with opener as s:
            data = await s.get_all_pages("small.bin")
            assert len(data) == 4096
async def main(url):
    if shared:
        from bridge.aio.pool import Pool
    pool = Pool(url) if shared else None
    per = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    try:
        await asyncio.gather(*[cycles(url, n, pool) for n in per])
    finally:
        if pool is not None:
            await pool.close()
prof = cProfile.Profile() if profile else None
t0, c0 = time.perf_counter(), time.process_time()
if prof: prof.enable()
asyncio.run(main(sys.argv[1]))
if prof: prof.disable()
print(f"elapsed={time.perf_counter() - t0:.6f}", f"cpu={time.process_time() - c0:.6f}")
if prof: pstats.Stats(prof, stream=sys.stderr).sort_stats(profile).print_stats(45)
"""

SERVER = """
import asyncio, cProfile, pstats, signal, sys
from bridge.aio.server import PageServer, run_server
def ready(server): print(f"websocket: {server.ws_url}", flush=True)
prof = cProfile.Profile()
prof.enable()
asyncio.run(run_server(PageServer(sys.argv[1], port=0, max_connections=2048), on_ready=ready))
prof.disable()
pstats.Stats(prof, stream=sys.stderr).sort_stats(sys.argv[2]).print_stats(45)
"""


def run(count: int, concurrency: int, profile: str | None, sort: str, shared: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "small.bin").write_bytes(os.urandom(4096))
        err = folder / "server.err"
        if profile == "server":
            with open(err, "w") as errf:
                proc = subprocess.Popen([PY, "-c", SERVER, str(folder), sort], stdout=subprocess.PIPE,
                                        stderr=errf, text=True, cwd=REPO)
                assert proc.stdout is not None
                url = proc.stdout.readline().split()[-1]
        else:
            proc, url = start([PY, "-m", "bridge", "serve", str(folder), "--port", "0",
                               "--max-connections", "2048"], r"websocket: (\S+)")
        try:
            server = psutil.Process(proc.pid)
            s0 = sum(server.cpu_times()[:2])
            out = subprocess.run([PY, "-c", CLIENT, url, str(count), str(concurrency),
                                  sort if profile == "client" else "", "1" if shared else "0"],
                                 capture_output=True, text=True, cwd=REPO, timeout=600)
            server_cpu = sum(server.cpu_times()[:2]) - s0
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            fields = dict(w.split("=", 1) for w in out.stdout.split())
            if profile == "client":
                print(out.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if profile == "server":
            print(err.read_text())
    return {"client_ms": float(fields["cpu"]) / count * 1000, "server_ms": server_cpu / count * 1000,
            "elapsed_s": float(fields["elapsed"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", choices=["client", "server"])
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--shared", action="store_true", help="sessions of one Pool (shared connections)")
    args = parser.parse_args()
    for _ in range(args.runs):
        t = time.strftime("%H:%M:%S", time.gmtime())
        r = run(args.count, args.concurrency, args.profile, args.sort, args.shared)
        print(f"{t} {args.count} cycles x{args.concurrency}{' shared' if args.shared else ''}: "
              f"client {r['client_ms']:.2f} ms CPU/conn, server {r['server_ms']:.2f} ms CPU/conn, "
              f"{r['elapsed_s']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
