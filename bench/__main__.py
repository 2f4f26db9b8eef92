"""``python -m bench [--quick] [--only NAME ...] [--update-readme]``: the whole suite.

Prints a table per scenario, writes bench/results/latest.json, a chart
(bench/results/throughput.png) and, with --update-readme, the tables into
bench/README.md between its result markers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import suite
from bench.harness import RESULTS, machine

MiB = 2**20
SCENARIOS = ["throughput", "rtt", "small", "memory", "many", "integrity", "follow", "scan", "browser",
             "profile", "objects"]


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("runs", "machine", "date")]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = results.get("throughput", [])
    if rows:
        axes[0].barh([r["system"] for r in rows], [r["median"] for r in rows],
                     xerr=[[r["median"] - r["min"] for r in rows], [r["max"] - r["median"] for r in rows]],
                     color="#2563eb")
        axes[0].set_xlabel("MiB/s (median, min-max)")
        axes[0].set_title("Loopback throughput, sha256-verified")
        axes[0].invert_yaxis()
    rows = results.get("rtt", [])
    if rows:
        axes[1].barh([r["system"] for r in rows], [r["median"] for r in rows], color="#15803d")
        axes[1].set_xlabel("MiB/s (median)")
        axes[1].set_title("Through a delay proxy (round-trip time)")
        axes[1].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke test")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--update-readme", action="store_true", help="write the tables into bench/README.md")
    args = parser.parse_args()
    quick = args.quick
    chosen = args.only or SCENARIOS
    if quick:
        chosen = [s for s in chosen if s not in ("browser", "profile")]
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                               "quick": quick}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        folder = Path(tmp)
        if "throughput" in chosen:
            results["throughput"] = suite.throughput(folder, (16 if quick else 1024) * MiB, 1 if quick else 3)
        if "rtt" in chosen:
            results["rtt"] = suite.round_trip(folder, (4 if quick else 256) * MiB, 1 if quick else 2,
                                              (10,) if quick else (10, 50))
        if "small" in chosen:
            results["small"] = suite.small_files(folder, 50 if quick else 1000)
        if "memory" in chosen:
            results["memory"] = suite.memory(folder, (32 if quick else 1024) * MiB, 1 if quick else 10)
        if "many" in chosen:
            single = next((r["median"] for r in results.get("throughput", [])
                           if r["system"] == "pagebridge (collector)"), None)
            plans = [(20, MiB)] if quick else [(1000, MiB), (100, 16 * MiB)]
            results["many"] = suite.many_collectors(folder, plans, single)
        if "integrity" in chosen:
            rates = {r["system"]: r["median"] for r in results.get("throughput", [])}
            results["integrity"] = [suite.integrity_cost(rates.get("pagebridge (collector)", 500.0),
                                                         rates.get("pagebridge (collector, integrity off)"))]
        if "follow" in chosen:
            from bench import follow_latency

            results["follow"] = [follow_latency.main(["--lines", "100" if quick else "1000"])]
        if "scan" in chosen:
            from bench import scan

            found = scan.main(["--size-mib", "16" if quick else "600", "--runs", "1" if quick else "5"]
                              + (["--skip-engines"] if quick else []))
            results["scan"] = found["grep"]
            results["scan_memory"] = found["memory"]
            results["scan_engines"] = found.get("engines", [])
        if "browser" in chosen:
            from bench import browser

            results["browser"] = browser.main(["--size-mib", "256", "--runs", "3"])["rows"]
        if "objects" in chosen:
            from bench import objects

            results["objects"] = objects.run((8 if quick else 256) * MiB, 1 if quick else 3)
        if "profile" in chosen:
            results["profile"] = [{"file": suite.profile(folder, 512 * MiB, RESULTS)}]
    (RESULTS / ("quick.json" if quick else "latest.json")).write_text(json.dumps(results, indent=2, default=str))
    text = [f"Results of {results['date']} on {results['machine']}" + (" (quick)" if quick else "")]
    for name in [*SCENARIOS, "scan_memory", "scan_engines"]:
        if results.get(name):
            text.append(f"\n### {name}\n\n{markdown(results[name])}")
    report = "\n".join(text)
    print(report)
    if not quick:
        chart(results, RESULTS / "throughput.png")
    if args.update_readme:
        readme = Path(__file__).resolve().parent / "README.md"
        body = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        head, _, rest = body.partition(start)
        _, _, tail = rest.partition(end)
        readme.write_text(f"{head}{start}\n{report}\n{end}{tail}")


if __name__ == "__main__":
    main()
