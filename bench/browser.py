"""The browser: collector.js throughput, and the viewer's memory and smoothness.

``--scenario throughput`` (the default): collector.js in Chromium beside the
browser's own ceiling.  The ceiling is a raw WebSocket sender (binary frames
of 256 KiB, no acks, no msgpack) to a page that only counts bytes.
pagebridge is collector.js (default window, 256 KiB pages, XXH3 per page and
per stream) receiving the same file from ``pagebridge serve``.  Both servers
run in their own process; systems alternate; the table gives medians and
the ratio.

``--scenario viewer``: the viewer (web/index.html) in headless Chromium
against ``pagebridge serve`` in its own process:

* memory: the JS heap (after a full collection) and the renderer's RSS while
  it opens a 2 GiB log (sparse: 16 MiB of lines at 0, 50 %, 90 % and the end),
  jumps to 50 %, 90 %, the end, the top, scrolls, and while it shows a 64 MiB
  file without a newline;
* follow: a writer appends numbered lines at 2 000 and at 20 000 lines/s for
  10 s while the viewer follows; frames (requestAnimationFrame intervals),
  long tasks (PerformanceObserver), how far behind the viewer was, and how
  long it took to show the last line after the writer stopped.

    python -m bench.browser [--size-mib 256] [--runs 3]
    python -m bench.browser --scenario viewer [--seconds 10]
    python -m bench.browser --scenario first-match [--runs 5] [--before REF]

``--scenario first-match``: the time from submitting a search to its first
match on screen, on a 2 GiB log, a match near its start and one near its
end (bench/first_match.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, machine, print_table, rows_from, start

RAW_PAGE = """async ([url, expected]) => {
  const t0 = performance.now();
  let bytes = 0;
  await new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => { bytes += ev.data.byteLength; };
    ws.onclose = resolve;
    ws.onerror = reject;
  });
  return [bytes, (performance.now() - t0) / 1000];
}"""

COLLECTOR_PAGE = """async ([path, pageSize, compress = false]) => {
  const { connect } = await import('/collector.js');
  const session = await connect('/ws', { compress });
  const t0 = performance.now();
  let bytes = 0;
  for await (const item of session.pages(path, { pageSize, compress })) {
    if (item.kind === 'page') bytes += item.data.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  session.close();
  return [bytes, seconds];
}"""


@contextlib.contextmanager
def viewer_page(url: str) -> Iterator[Any]:
    """A Chromium page at ``url`` (a pagebridge server's viewer), closed afterwards."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


def collector_seconds(page: Any, path: str, size: int, *, compress: bool = False) -> float:
    """Seconds for collector.js in ``page`` to receive ``path`` (``size`` bytes, verified by XXH3)."""
    got, seconds = page.evaluate(COLLECTOR_PAGE, [path, 256 * 1024, compress])
    assert got == size, got
    return float(seconds)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["throughput", "viewer", "first-match"], default="throughput")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="viewer: how long each follow rate is written")
    parser.add_argument("--before", metavar="REF", help="first-match: also run a copy of this commit, alternating")
    args = parser.parse_args(argv)
    if args.scenario == "viewer":
        from bench.viewer import run as run_viewer

        return run_viewer(seconds=args.seconds)
    if args.scenario == "first-match":
        from bench.first_match import run as run_first_match

        return run_first_match(runs=args.runs, before=args.before)
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    size = args.size_mib * 2**20
    py = sys.executable
    rates: dict[str, list[float]] = {"raw WebSocket (count only)": [], "collector.js (verified)": []}
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        data = Path(tmp) / "data.bin"
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(2**20))
        pb, pb_url = start([py, "-m", "bridge", "serve", tmp, "--port", "0"], r"viewer:\s+(\S+)")
        raw, raw_port = start([py, "-m", "bench.peers", "raw-ws-server", str(data), "0"], r"ready (\d+)")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                raw_page = browser.new_page()
                raw_page.goto(f"http://127.0.0.1:{raw_port}/")
                pb_page = browser.new_page()
                pb_page.goto(pb_url)
                for _ in range(args.runs):
                    got, seconds = raw_page.evaluate(RAW_PAGE, [f"ws://127.0.0.1:{raw_port}", size])
                    assert got == size, got
                    rates["raw WebSocket (count only)"].append(size / seconds / 2**20)
                    got, seconds = pb_page.evaluate(COLLECTOR_PAGE, ["data.bin", 256 * 1024])
                    assert got == size, got
                    rates["collector.js (verified)"].append(size / seconds / 2**20)
                browser.close()
        finally:
            pb.kill()
            raw.kill()
    rows = rows_from(rates, "raw WebSocket (count only)")
    print_table(f"Browser throughput, {args.size_mib} MiB into headless Chromium, {args.runs} runs each "
                "(MiB/s)", rows)
    result = {"scenario": "browser", "size_mib": args.size_mib, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browser.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
