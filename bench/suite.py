"""The benchmark scenarios.  Each starts its servers as processes, alternates the
systems, repeats, and returns rows {system, median, min, max, ratio, unit}."""

from __future__ import annotations

import hashlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench.harness import REPO, rows_from, start

PY = sys.executable


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 2**20))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


@contextmanager
def servers(*specs: tuple[list[str], str]):
    procs = []
    values = []
    try:
        for cmd, pattern in specs:
            proc, value = start(cmd, pattern)
            procs.append(proc)
            values.append(value)
        yield values
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def receive(cmd: list[str], expected: str | None, size: int) -> float:
    """Run a receiver; check its sha256; return MiB/s from its own timing (or wall time)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} failed: {out.stderr.strip()[-400:]}")
    if expected is not None and expected not in out.stdout.split():
        raise RuntimeError(f"{' '.join(cmd[2:5])}: sha256 mismatch: {out.stdout[-200:]}")
    inner = re.search(r"elapsed=([0-9.]+)", out.stdout + out.stderr)
    return size / (float(inner.group(1)) if inner else elapsed) / 2**20


# ---------------------------------------------------------------- 1. throughput


def throughput(folder: Path, size: int, runs: int) -> list[dict[str, Any]]:
    data = folder / "data.bin"
    expected = make_file(data, size)
    out = folder / "out.bin"
    with servers(
        ([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)"),
        ([PY, "-m", "bench.peers", "raw-ws-server", str(data), "0"], r"ready (\d+)"),
        ([PY, "-m", "bench.peers", "twisted-pb-server", str(data), "0"], r"ready (\d+)"),
        ([PY, "-m", "bench.peers", "aiohttp-server", str(data), "0"], r"ready (\d+)"),
        ([PY, "-m", "bench.peers", "raw-tcp-server", str(data), "0"], r"ready (\d+)"),
    ) as (pb_url, raw_port, twisted_port, http_port, tcp_port):
        systems = {
            "raw websockets": [PY, "-m", "bench.peers", "raw-ws-receive", f"ws://127.0.0.1:{raw_port}"],
            "pagebridge (collector)": [PY, "-m", "bench.peers", "pagebridge-receive", pb_url, "data.bin"],
            "pagebridge (collector, integrity off)": [PY, "-m", "bench.peers", "pagebridge-receive", pb_url,
                                                      "data.bin", "--no-integrity"],
            "pagebridge get (to file, sha256)": [PY, "-m", "bridge", "get", pb_url, "data.bin", "-o", str(out),
                                         "--sha256", "-q", "--report"],
            "HTTP aiohttp (to file, sha256)": [PY, "-m", "bench.peers", "http-receive", http_port, str(out)],
            "Twisted PB FilePager": [PY, "-m", "bench.peers", "twisted-pb-receive", twisted_port],
            "raw TCP sendfile": [PY, "-m", "bench.peers", "raw-tcp-receive", tcp_port],
        }
        rates: dict[str, list[float]] = {name: [] for name in systems}
        for _ in range(runs):
            for name, cmd in systems.items():
                rates[name].append(receive(cmd, expected, size))
                out.unlink(missing_ok=True)
    data.unlink()
    return rows_from(rates, "raw websockets")


# ---------------------------------------------------------------- 2. round-trip time


RTT_RECEIVER = """
import asyncio, sys, time, hashlib
from bridge.aio.client import Page, connect
async def main(url, window, length):
    t0 = time.perf_counter(); h = hashlib.sha256(); n = 0
    async with connect(url) as s:
        async with s.pages("data.bin", length=int(length) if length != "all" else None,
                           window=None if window == "auto" else int(window)) as st:
            async for p in st:
                h.update(p.data); n += len(p.data)
    print(n, h.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}")
asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


def round_trip(folder: Path, size: int, runs: int, rtts: tuple[int, ...] = (10, 50)) -> list[dict[str, Any]]:
    data = folder / "data.bin"
    expected = make_file(data, size)
    rows = []
    with servers(
        ([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: ws://127.0.0.1:(\d+)/ws"),
        ([PY, "-m", "bench.peers", "raw-ws-server", str(data), "0"], r"ready (\d+)"),
    ) as (pb_port, raw_port):
        for rtt in rtts:
            with servers(
                ([PY, "-m", "bench.proxy", "0", pb_port, str(rtt)], r"ready (\d+)"),
                ([PY, "-m", "bench.proxy", "0", raw_port, str(rtt)], r"ready (\d+)"),
            ) as (pb_proxy, raw_proxy):
                pb_url = f"ws://127.0.0.1:{pb_proxy}/ws"
                systems = {
                    f"raw websockets @{rtt}ms": [PY, "-m", "bench.peers", "raw-ws-receive",
                                                 f"ws://127.0.0.1:{raw_proxy}"],
                    f"pagebridge default @{rtt}ms": [PY, "-c", RTT_RECEIVER, pb_url, "auto", "all"],
                    # Stop-and-wait is one page per round trip: 16 MiB of it says all there is.
                    f"pagebridge window 1 @{rtt}ms": [PY, "-c", RTT_RECEIVER, pb_url, "1", str(16 << 20)],
                }
                rates: dict[str, list[float]] = {name: [] for name in systems}
                for _ in range(runs):
                    for name, cmd in systems.items():
                        if "window 1" in name:
                            rates[name].append(receive(cmd, None, min(size, 16 << 20)))
                        else:
                            rates[name].append(receive(cmd, expected, size))
                rows += rows_from(rates, f"raw websockets @{rtt}ms")
    data.unlink()
    return rows


# ---------------------------------------------------------------- 3. small files


def small_files(folder: Path, count: int) -> list[dict[str, Any]]:
    small = folder / "small.bin"
    small.write_bytes(os.urandom(4096))
    rows = []
    with servers(
        ([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)"),
        ([PY, "-m", "bench.peers", "twisted-pb-server", str(small), "0"], r"ready (\d+)"),
    ) as (pb_url, twisted_port):
        for name, cmd in {
            "pagebridge": [PY, "-m", "bench.peers", "pagebridge-small", pb_url, str(count)],
            "Twisted PB": [PY, "-m", "bench.peers", "twisted-pb-small", twisted_port, str(count)],
        }.items():
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600, check=True)
            ms = sorted(float(x) * 1000 for x in out.stdout.split())
            rows.append({"system": name, "p50_ms": statistics.median(ms),
                         "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max_ms": ms[-1],
                         "transfers": len(ms)})
    small.unlink()
    return rows


# ---------------------------------------------------------------- 4. memory


class PeakRSS:
    """Samples a process's RSS every 10 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.01)

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.base, self.peak


STALLED = """
import asyncio, sys
from bridge.aio.client import connect
async def main():
    async with connect(sys.argv[1]) as s:
        async with s.pages("data.bin", window=16) as st:
            await st.__anext__()
            print("holding", flush=True)
            await asyncio.sleep(float(sys.argv[2]))
asyncio.run(main())
"""

CLIENT_MEMORY = """
import asyncio, sys, resource, hashlib
from bridge.aio.client import connect
async def main():
    async with connect(sys.argv[1]) as s:
        if sys.argv[2] == "all":
            data = await s.get_all_pages("data.bin")
            n = len(data)
        else:
            r = await s.download("data.bin", sys.argv[3]); n = r.bytes
    print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
asyncio.run(main())
"""


def memory(folder: Path, size: int, hold_seconds: float) -> list[dict[str, Any]]:
    data = folder / "data.bin"
    make_file(data, size)
    rows = []
    with servers(([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)")) as (url,):
        server_pid = next(p.pid for p in psutil.Process().children() if "serve" in " ".join(p.cmdline()))
        meter = PeakRSS(server_pid)
        child = subprocess.Popen([PY, "-c", STALLED, url, str(hold_seconds)], stdout=subprocess.PIPE, cwd=REPO)
        assert child.stdout is not None and child.stdout.readline() == b"holding\n"
        child.wait(hold_seconds + 30)
        base, peak = meter.stop()
        rows.append({"system": "server, collector never acks (window 16 x 256 KiB)",
                     "growth_mib": (peak - base) / 2**20, "target_mib": 16 * 0.25 + 16, "file_mib": size / 2**20})
        baseline = subprocess.run([PY, "-c", "import resource, bridge; print(resource.getrusage("
                                   "resource.RUSAGE_SELF).ru_maxrss * 1024)"],
                                  capture_output=True, text=True, cwd=REPO, check=True)
        python_base = int(baseline.stdout)
        all_pages = subprocess.run([PY, "-c", CLIENT_MEMORY, url, "all"], capture_output=True, text=True,
                                   cwd=REPO, check=True, timeout=600)
        n, rss = map(int, all_pages.stdout.split())
        rows.append({"system": "client get_all_pages", "peak_mib": rss / 2**20,
                     "ratio_to_file": (rss - python_base) / n, "file_mib": n / 2**20})
        download = subprocess.run([PY, "-c", CLIENT_MEMORY, url, "download", str(folder / "copy.bin")],
                                  capture_output=True, text=True, cwd=REPO, check=True, timeout=600)
        n, rss = map(int, download.stdout.split())
        rows.append({"system": "client download", "peak_mib": rss / 2**20, "file_mib": n / 2**20,
                     "target_mib": 64})
        (folder / "copy.bin").unlink(missing_ok=True)
    data.unlink()
    return rows


# ---------------------------------------------------------------- 5. many collectors

MANY = """
import asyncio, random, sys, time, hashlib
from bridge.aio.client import connect
from bridge.errors import ConnectionClosedError, ErrorCode, PagebridgeError
retries = 0
async def one(url, expected, shared, name):
    global retries
    while True:
        try:
            session = await (pool.connect() if pool is not None else connect(url, shared=shared))
            break
        except (PagebridgeError, ConnectionClosedError) as exc:
            # A storm of connections meets the server's cap on connections
            # still waiting to say hello (503 busy after a wait), or a
            # handshake that timed out on the loaded machine: back off and
            # retry, as a fleet of real collectors would.
            if exc.code is not ErrorCode.BUSY and "timed out" not in exc.message:
                raise
            retries += 1
            await asyncio.sleep(random.uniform(0.01, 0.1))
    async with session as s:
        t0 = time.perf_counter()
        if streaming:  # hash each page as it comes: no buffer the size of the result
            digest, size = hashlib.sha256(), 0
            async with s.pages(name, page_size=s.bulk_page_size) as stream:
                async for page in stream:
                    digest.update(page.data)
                    size += len(page.data)
        else:
            data = await s.get_all_pages(name)
            digest, size = hashlib.sha256(data), len(data)
        dt = time.perf_counter() - t0
        assert digest.hexdigest() == expected
        return size / dt
streaming = sys.argv[6:7] == ["stream"]
# "pool64": one Pool running as many transfers as the server allows per connection (64), as
# every Pool did before transfers_per_connection (default 16) was added.
pool = None
async def main(url, n, expected, shared, name):
    global pool
    if sys.argv[4:5] == ["pool64"]:
        from bridge.aio.pool import Pool
        pool = Pool(url, transfers_per_connection=None)
    t0, c0 = time.perf_counter(), time.process_time()
    rates = await asyncio.gather(*[one(url, expected, shared, name) for _ in range(n)])
    total = time.perf_counter() - t0
    print(n, min(rates), max(rates), f"elapsed={total:.6f}", f"cpu={time.process_time() - c0:.6f}",
          f"retries={retries}")
asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:5] == ["shared"],
                 (sys.argv[5:6] or ["data.bin"])[0]))
"""


def many_collectors(folder: Path, plans: list[tuple[int, int]], single_rate: float | None,
                    modes: tuple[str, ...] = ("separate", "shared")) -> list[dict[str, Any]]:
    """Each plan with a connection per collector, and with connect(shared=True) (a Pool)."""
    rows = []
    for (count, size), mode in ((plan, mode) for plan in plans for mode in modes):
        data = folder / "data.bin"
        expected = make_file(data, size)
        with servers(([PY, "-m", "bridge", "serve", str(folder), "--port", "0", "--max-connections",
                       str(count + 10)], r"websocket: (\S+)")) as (url,):
            server = next(p for p in psutil.Process().children() if "serve" in " ".join(p.cmdline()))
            server_cpu = sum(server.cpu_times()[:2])
            out = subprocess.run([PY, "-c", MANY, url, str(count), expected, mode], capture_output=True,
                                 text=True, cwd=REPO, timeout=900)
            server_cpu = sum(server.cpu_times()[:2]) - server_cpu
            if out.returncode != 0:
                rows.append({"system": f"{count} x {size >> 20} MiB", "error": out.stderr[-300:]})
                continue
            n, slowest, fastest, *said = out.stdout.split()
            fields = dict(word.split("=", 1) for word in said)
            total = float(fields["elapsed"])
            aggregate = count * size / total / 2**20
            rows.append({"system": f"{count} collectors x {size / 2**20:g} MiB"
                                   + (" (shared)" if mode == "shared" else ""), "errors": 0,
                         "aggregate_mib_s": aggregate,
                         "ratio_to_single": aggregate / single_rate if single_rate else None,
                         "fairness": float(slowest) / float(fastest),
                         "client_cpu_s": float(fields["cpu"]), "server_cpu_s": server_cpu,
                         "elapsed_s": total, "busy_retries": int(fields["retries"])})
        data.unlink()
    return rows


# ---------------------------------------------------------------- 6. integrity cost


def integrity_cost(transfer_rate_mib_s: float, rate_without: float | None = None) -> dict[str, Any]:
    """Integrity on vs off from scenario 1, and the XXH3 work per GiB per side as a share of it."""
    import xxhash

    block = os.urandom(256 * 1024)
    t0 = time.perf_counter()
    for _ in range(4096):  # 1 GiB of 256 KiB pages: per-page XXH3-64 + stream XXH3-128
        xxhash.xxh3_64_digest(block)
    digest = xxhash.xxh3_128()
    for _ in range(4096):
        digest.update(block)
    per_side = time.perf_counter() - t0
    transfer = 1024 / transfer_rate_mib_s
    return {"on_mib_s": transfer_rate_mib_s, "off_mib_s": rate_without,
            "measured_cost": (1 - transfer_rate_mib_s / rate_without) if rate_without else None,
            "xxh3_seconds_per_gib_per_side": per_side, "estimated_cost": per_side / transfer}


# ---------------------------------------------------------------- 7. profile


def profile(folder: Path, size: int, results: Path) -> str:
    data = folder / "data.bin"
    make_file(data, size)
    with servers(([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)")) as (url,):
        text = results / "profile_collector.txt"
        subprocess.run([PY, "-m", "pyinstrument", "-o", str(text), "-m", "bench.peers", "pagebridge-receive",
                        url, "data.bin"], cwd=REPO, check=True, capture_output=True, timeout=600)
    data.unlink()
    return str(text.relative_to(REPO))


