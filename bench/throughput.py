"""Throughput of pagebridge beside a raw websockets sender, same machine, same run.

Every server runs in its own process; every receiver is a fresh process that
hashes (sha256) what it receives, and the hash is checked against the file's.
Systems alternate, each run several times; the table gives median, min and
max in MiB/s and the ratio of medians to raw websockets.

    python -m bench.throughput [--size-mib 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def start(cmd: list[str], pattern: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(pattern, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} did not start")


def timed(cmd: list[str], expected: str, size: int) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {out.stderr.strip()[-300:]}")
    got = out.stdout.split()
    if expected not in got:
        raise RuntimeError(f"{cmd[:4]}: sha256 mismatch: {out.stdout.strip()[-200:]}")
    inner = re.search(r"elapsed=([0-9.]+)", out.stdout)
    if inner:  # the receiver timed connect-to-end itself: interpreter start excluded
        elapsed = float(inner.group(1))
    return size / elapsed / 2**20


def machine() -> dict[str, object]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import msgpack
    import websockets

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "websockets": websockets.__version__, "msgpack": ".".join(map(str, msgpack.version))}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        folder = Path(tmp)
        data_file = folder / "data.bin"
        digest = hashlib.sha256()
        with open(data_file, "wb") as f:
            for _ in range(args.size_mib):
                block = os.urandom(2**20)
                digest.update(block)
                f.write(block)
        expected = digest.hexdigest()
        size = args.size_mib * 2**20
        out_dir = folder / "out"
        out_dir.mkdir()
        pb, pb_url = start([py, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)")
        raw, raw_port = start([py, "-m", "bench.peers", "raw-ws-server", str(data_file), "0"], r"ready (\d+)")
        systems = {
            "raw websockets (memory)": [py, "-m", "bench.peers", "raw-ws-receive", f"ws://127.0.0.1:{raw_port}"],
            "pagebridge (memory)": [py, "-m", "bench.peers", "pagebridge-receive", pb_url, "data.bin"],
            "pagebridge get (file)": [py, "-m", "bridge", "get", pb_url, "data.bin", "-o",
                                      str(out_dir / "got.bin"), "--sha256", "-q"],
        }
        rates: dict[str, list[float]] = {name: [] for name in systems}
        try:
            for _ in range(args.runs):
                for name, cmd in systems.items():
                    rates[name].append(timed(cmd, expected, size))
                    (out_dir / "got.bin").unlink(missing_ok=True)
        finally:
            pb.kill()
            raw.kill()
    reference = statistics.median(rates["raw websockets (memory)"])
    rows = []
    print(f"\nThroughput, {args.size_mib} MiB over loopback, receiver hashing sha256, "
          f"{args.runs} runs each, alternating (MiB/s; connect to verified end, except 'get': whole command)")
    print(f"{'system':28} {'median':>8} {'min':>8} {'max':>8} {'ratio':>7}")
    for name, values in rates.items():
        med = statistics.median(values)
        rows.append({"system": name, "median": med, "min": min(values), "max": max(values),
                     "ratio": med / reference, "runs": values})
        print(f"{name:28} {med:8.0f} {min(values):8.0f} {max(values):8.0f} {med / reference:7.2f}")
    result = {"scenario": "throughput", "size_mib": args.size_mib, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
