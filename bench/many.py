"""1000 collectors beside one stream: ``python -m bench.many [--count 1000] [--size-mib 1] [--runs 3]``.

One ``pagebridge serve`` process; the client processes, alternating in each
run: one collector fetching ``count x size`` bytes as a single stream, then
``count`` collectors of ``size`` bytes each with a connection of their own
(``connect(url)``), then the same over shared connections
(``connect(url, shared=True)``, one Pool running 16 transfers per
connection, its default), and over one ``Pool`` running 64 transfers per
connection (the server's ``max_streams``, every Pool's before
``transfers_per_connection``); then the single stream and the
shared collectors again, each hashing its pages as they come instead of
collecting the whole result with ``get_all_pages``.  Every receiver
checks sha256.
Prints per run and the medians: aggregate MiB/s, the ratio to the single
stream, client and server CPU seconds, and 503 retries.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from bench.harness import REPO
from bench.suite import MANY, PY, make_file, servers

MiB = 2**20


def once(url: str, server: psutil.Process, count: int, expected: str, mode: str, name: str,
         size: int) -> dict[str, float]:
    s0 = sum(server.cpu_times()[:2])
    shared, _, streaming = mode.partition(" ")
    out = subprocess.run([PY, "-c", MANY, url, str(count), expected, shared, name, streaming], capture_output=True,
                         text=True, cwd=REPO, timeout=600)
    server_cpu = sum(server.cpu_times()[:2]) - s0
    if out.returncode != 0:
        raise RuntimeError(f"{mode}: {out.stderr[-1500:]}")
    fields = dict(w.split("=", 1) for w in out.stdout.split()[3:])
    elapsed = float(fields["elapsed"])
    return {"mib_s": count * size / elapsed / MiB, "client_cpu": float(fields["cpu"]),
            "server_cpu": server_cpu, "elapsed": elapsed, "retries": float(fields["retries"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size-mib", type=float, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = int(args.size_mib * MiB)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = make_file(folder / "data.bin", size)
        whole = make_file(folder / "one.bin", size * args.count)
        systems = {
            "single stream": (1, whole, "separate", "one.bin", size * args.count),
            f"{args.count} connections": (args.count, small, "separate", "data.bin", size),
            f"{args.count} shared (Pool)": (args.count, small, "shared", "data.bin", size),
            f"{args.count} shared, 64 per conn.": (args.count, small, "pool64", "data.bin", size),
            # The same, each collector hashing its pages as they come (no result buffer).
            "single stream, streaming": (1, whole, "separate stream", "one.bin", size * args.count),
            f"{args.count} shared, streaming": (args.count, small, "shared stream", "data.bin", size),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
        with servers(([PY, "-m", "bridge", "serve", str(folder), "--port", "0", "--max-connections",
                       str(args.count + 10)], r"websocket: (\S+)")) as (url,):
            server = next(p for p in psutil.Process().children() if "serve" in " ".join(p.cmdline()))
            for run in range(args.runs):
                for name, (count, expected, mode, file, each) in systems.items():
                    r = once(url, server, count, expected, mode, file, each)
                    results[name].append(r)
                    print(f"{time.strftime('%H:%M:%S', time.gmtime())} run {run + 1} {name:24} "
                          f"{r['mib_s']:7.1f} MiB/s  client {r['client_cpu']:5.2f} s  "
                          f"server {r['server_cpu']:5.2f} s CPU  {r['elapsed']:5.1f} s  "
                          f"retries {r['retries']:.0f}", flush=True)
    single = statistics.median(r["mib_s"] for r in results["single stream"])
    single_streaming = statistics.median(r["mib_s"] for r in results["single stream, streaming"])
    print(f"\n{'system':28} {'MiB/s':>7} {'ratio':>6} {'client s':>9} {'server s':>9} {'retries':>8}")
    print("(ratio: to the single stream of the same kind of collector)")
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        reference = single_streaming if name.endswith("streaming") else single
        print(f"{name:28} {med['mib_s']:7.1f} {med['mib_s'] / reference:6.2f} {med['client_cpu']:9.2f} "
              f"{med['server_cpu']:9.2f} {med['retries']:8.0f}")


if __name__ == "__main__":
    main()
