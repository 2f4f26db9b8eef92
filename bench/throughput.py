"""Scenario 1 alone: a file over loopback to pagebridge and its peers, sha256-verified.

    python -m bench.throughput [--size-mib 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench import suite
from bench.harness import RESULTS, machine, print_table


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        rows = suite.throughput(Path(tmp), args.size_mib * 2**20, args.runs)
    print_table(f"Throughput, {args.size_mib} MiB over loopback, sha256-verified, {args.runs} alternating "
                "runs (MiB/s, ratio to raw websockets)", rows)
    result = {"scenario": "throughput", "size_mib": args.size_mib, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
