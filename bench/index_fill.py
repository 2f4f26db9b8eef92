"""What filling the line index during a scan costs the scan (``python -m bench.index_fill``).

A whole-file scan that numbers lines (the viewer's search, ``grep -n``)
hands every block it reads to the line index (bridge/sources/scan.py,
``FileScan._feed``), so a later ``locate`` or ``cat --line`` needs no pass of
its own.  This measures, in process (no sockets: the scan's own work), the
CPU seconds of one scan of a page-cached log for a literal that is not
there, side by side in one run, alternating:

* ``not numbered``: the scan without line numbers (the floor: the matcher);
* ``numbered, no index``: line numbers counted by the scanner alone (what a
  scan did before the index was fed);
* ``numbered, index cold``: the same scan filling a new index as it goes;
* ``numbered, index warm``: a scan of a file whose index is complete (the
  scanner numbers long stretches from its checkpoints).

Newlines are counted by StringZilla when it is installed (pagebridge[fast]),
else by ``bytes.count``: ``--counter bytes`` forces the latter.

    python -m bench.index_fill [--size-mib 1024] [--runs 5] [--counter bytes]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

MIB = 2**20


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--counter", choices=["default", "bytes"], default="default")
    args = parser.parse_args(argv)

    from bench.first_match import make_log
    from bridge.scan import index as index_module
    from bridge.scan.index import LineIndexCache
    from bridge.scan.matcher import compile_pattern
    from bridge.sources.scan import FileScan

    if args.counter == "bytes":
        index_module.count_newlines = index_module._count_bytes
    counter = "StringZilla" if index_module.newline_counter() is index_module._count_simd else "bytes.count"
    with tempfile.TemporaryDirectory(prefix="pagebridge-index-fill-") as tmp:
        path = Path(tmp) / "app.log"
        make_log(path, args.size_mib * MIB, {})
        with open(path, "rb") as f:
            while f.read(64 * MIB):
                pass
        warm = LineIndexCache()

        def scan(number: bool, index: LineIndexCache | None) -> tuple[float, float]:
            s = FileScan(str(path), name="app.log", matcher=compile_pattern("zebra-not-here"),
                         number_lines=number, index=index)
            s.open()
            wall, cpu = time.perf_counter(), time.process_time()
            while not s.step().done:
                pass
            s.close()
            return time.perf_counter() - wall, time.process_time() - cpu

        scan(True, warm)  # fills `warm`
        systems = {
            "not numbered": lambda: scan(False, None),
            "numbered, no index": lambda: scan(True, None),
            "numbered, index cold": lambda: scan(True, LineIndexCache()),
            "numbered, index warm": lambda: scan(True, warm),
        }
        got: dict[str, list[tuple[float, float]]] = {name: [] for name in systems}
        for r in range(args.runs):
            for name in (list(systems) if r % 2 == 0 else list(reversed(systems))):
                got[name].append(systems[name]())
    print(f"One scan of a {args.size_mib} MiB page-cached log, in process, newlines by {counter}, "
          f"medians of {args.runs} alternating runs:")
    out: dict[str, dict[str, float]] = {}
    for name, values in got.items():
        cpu = statistics.median(v[1] for v in values)
        wall = statistics.median(v[0] for v in values)
        out[name] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}
        print(f"  {name:22} {cpu:6.3f} s CPU ({args.size_mib / cpu:6.0f} MiB per CPU second), {wall:6.3f} s wall")
    return out


if __name__ == "__main__":
    main()
