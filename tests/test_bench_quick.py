"""The benchmark harness itself never rots: a --quick run where every system yields a verified result.

This asserts results exist and were verified (each receiver's sha256 is checked by the harness,
which raises otherwise), never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_quick_runs_every_system() -> None:
    """python -m bench --quick completes and reports every system of every scenario."""
    result = subprocess.run([sys.executable, "-m", "bench", "--quick"], capture_output=True, text=True,
                            cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((REPO / "bench" / "results" / "quick.json").read_text())
    assert [r["system"] for r in data["throughput"]] == [
        "raw websockets", "pagebridge (collector)", "pagebridge (collector, integrity off)",
        "pagebridge get (to file, sha256)",
        "HTTP aiohttp (to file, sha256)", "Twisted PB FilePager", "raw TCP sendfile"]
    assert all(r["median"] > 0 for r in data["throughput"] + data["rtt"])
    assert [r["system"] for r in data["small"]] == ["pagebridge", "Twisted PB"]
    assert all(r["transfers"] == 50 for r in data["small"])
    assert len(data["memory"]) == 3 and data["memory"][1]["file_mib"] == 32
    assert all(r.get("errors") == 0 for r in data["many"])
    assert data["follow"][0]["lines"] == 100
    assert len(data["scan"]) == 7 and all(r["identical"] for r in data["scan"])
    assert data["scan_memory"][0]["peak growth MiB"] < 64
    assert [r["system"] for r in data["objects"]] == [
        "s3fs cat_file (one GET)", "s3fs open().read (ranged GETs)", "pagebridge (collector)"]
