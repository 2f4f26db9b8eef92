"""Shared pieces of the benchmark scripts: processes, machine facts, tables."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def start(cmd: list[str], pattern: str, env: dict[str, str] | None = None,
          cwd: Path = REPO) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; return it and the first match of ``pattern`` in its output."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd,
                            env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(pattern, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} did not start")


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


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    """Median/min/max/ratio rows as a fixed-width table on stdout."""
    print(f"\n{title}")
    print(f"{'system':34} {'median':>8} {'min':>8} {'max':>8} {'ratio':>7}")
    for r in rows:
        print(f"{r['system']!s:34} {r['median']:8.1f} {r['min']:8.1f} {r['max']:8.1f} {r['ratio']:7.2f}")


def rows_from(rates: dict[str, list[float]], reference: str, unit: str = "MiB/s") -> list[dict[str, object]]:
    """Medians, extremes and the ratio of medians to ``reference``."""
    ref = statistics.median(rates[reference]) if rates.get(reference) else None
    rows: list[dict[str, object]] = []
    for name, values in rates.items():
        if not values:
            continue
        med = statistics.median(values)
        rows.append({"system": name, "median": med, "min": min(values), "max": max(values),
                     "ratio": (med / ref) if ref else None, "unit": unit, "runs": values})
    return rows
