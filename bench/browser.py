"""The browser: collector.js throughput, and the viewer's memory and smoothness.

``--scenario throughput`` (the default): collector.js in Chromium beside the
browser's own ceiling, in one tab, systems in rotating order, each run
timed in the page and its CPU taken from the processes (Chromium's, and the
server's):

* raw WebSocket (count only): a raw websockets sender (binary frames of 256
  KiB, no acks, no msgpack) to a page that only counts bytes: the ceiling;
* raw WebSocket, 1 MiB messages (count only): the same sender with frames
  of 1 MiB, the ceiling to hold collector.js's 1 MiB pages against;
* raw WebSocket + XXH3-64: the 256 KiB sender, the page checking each
  message as collector.js checks a page (XXH3-64, the same hash-wasm
  hasher): the ceiling for the same integrity work;
* collector.js (verified): default window, 256 KiB pages, XXH3-64 per page
  (and seq, offset, pages, length), from ``pagebridge serve``;
* collector.js, 1 MiB pages: the same with ``pageSize: 1 MiB``;
* collector.js + end digest: 256 KiB pages with ``digest: true`` (also the
  XXH3-128 of the whole stream: a second hash pass, as the viewer's
  download asks).

Chromium is driven over the DevTools protocol by bench/cdp.py, not
playwright, whose Network domain would copy every message to the driver.
The table gives medians and the ratio to the count-only page; a second
table the ratio to the hashing page and CPU seconds per GiB.

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
import statistics
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

# The raw sender's frames checked as collector.js checks pages by default:
# XXH3-64 of each message, with the same hash-wasm hasher (digests compared
# to nothing: the work, not the verdict, is the point).
RAW_HASHED_PAGE = """async ([url, expected]) => {
  const { createXXHash3 } = await import('hash-wasm');
  const page = await createXXHash3();
  const t0 = performance.now();
  let bytes = 0;
  let sink = 0;
  await new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      const data = new Uint8Array(ev.data);
      page.init();
      page.update(data);
      sink ^= page.digest('binary')[0];
      bytes += data.length;
    };
    ws.onclose = resolve;
    ws.onerror = reject;
  });
  return [bytes, (performance.now() - t0) / 1000, sink];
}"""

COLLECTOR_PAGE = """async ([path, pageSize, compress = false, digest = false]) => {
  const { connect } = await import('/collector.js');
  const session = await connect('/ws', { compress });
  const t0 = performance.now();
  let bytes = 0;
  for await (const item of session.pages(path, { pageSize, compress, digest })) {
    if (item.kind === 'page') bytes += item.data.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  session.close();
  return [bytes, seconds];
}"""

RAW = "raw WebSocket (count only)"
RAW_1M = "raw WebSocket, 1 MiB messages"
RAW_HASHED = "raw WebSocket + XXH3-64 (hash-wasm)"
COLLECTOR = "collector.js (verified)"
COLLECTOR_1M = "collector.js, 1 MiB pages"
COLLECTOR_DIGEST = "collector.js + end digest"


def cpu_seconds(processes: list[Any]) -> float:
    """User + system CPU seconds used so far by ``processes`` (psutil), those gone counting 0."""
    import psutil

    total = 0.0
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


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
    parser.add_argument("--profile", action="store_true",
                        help="throughput: then one more run of each system under the DevTools sampling profiler, "
                             "printing the renderer main thread's self time by function (ms per GiB)")
    args = parser.parse_args(argv)
    if args.scenario == "viewer":
        from bench.viewer import run as run_viewer

        return run_viewer(seconds=args.seconds)
    if args.scenario == "first-match":
        from bench.first_match import run as run_first_match

        return run_first_match(runs=args.runs, before=args.before)
    import psutil

    from bench.cdp import Chromium

    size = args.size_mib * 2**20
    py = sys.executable
    systems = [RAW, RAW_1M, RAW_HASHED, COLLECTOR, COLLECTOR_1M, COLLECTOR_DIGEST]
    rates: dict[str, list[float]] = {name: [] for name in systems}
    browser_cpu: dict[str, list[float]] = {name: [] for name in systems}
    server_cpu: dict[str, list[float]] = {name: [] for name in systems}
    profiles: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pagebridge-bench-") as tmp:
        data = Path(tmp) / "data.bin"
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(2**20))
        pb, pb_url = start([py, "-m", "bridge", "serve", tmp, "--port", "0"], r"viewer:\s+(\S+)")
        raw, raw_port = start([py, "-m", "bench.peers", "raw-ws-server", str(data), "0"], r"ready (\d+)")
        raw_1m, raw_1m_port = start([py, "-m", "bench.peers", "raw-ws-server", str(data), "0", str(2**20)],
                                    r"ready (\d+)")
        pb_proc, raw_proc, raw_1m_proc = (psutil.Process(p.pid) for p in (pb, raw, raw_1m))
        servers = {RAW: raw_proc, RAW_1M: raw_1m_proc, RAW_HASHED: raw_proc, COLLECTOR: pb_proc,
                   COLLECTOR_1M: pb_proc, COLLECTOR_DIGEST: pb_proc}
        raw_url = f"ws://127.0.0.1:{raw_port}"
        raw_1m_url = f"ws://127.0.0.1:{raw_1m_port}"

        def call(system: str) -> tuple[str, list[Any]]:
            if system == COLLECTOR:
                return COLLECTOR_PAGE, ["data.bin", 256 * 1024]
            if system == COLLECTOR_1M:
                return COLLECTOR_PAGE, ["data.bin", 2**20]
            if system == COLLECTOR_DIGEST:
                return COLLECTOR_PAGE, ["data.bin", 256 * 1024, False, True]
            if system == RAW_HASHED:
                return RAW_HASHED_PAGE, [raw_url, size]
            return RAW_PAGE, [raw_1m_url if system == RAW_1M else raw_url, size]

        def run(page: Any, system: str) -> float:
            got, seconds, *_ = page.evaluate(*call(system))
            assert got == size, (system, got)
            return float(seconds)

        def profiled(page: Any, system: str) -> dict[str, float]:
            (got, *_), self_time = page.profile(*call(system))
            assert got == size, (system, got)
            return self_time

        try:
            # Not playwright: it would have Chromium copy every message to it (see bench/cdp.py).
            with Chromium() as browser:
                # All three in one tab of the viewer's origin; CSP bypassed so
                # that it may reach the raw sender's port (connect-src is 'self').
                page = browser.new_page(pb_url, bypass_csp=True)
                for system in systems:  # warm up: modules, WebAssembly, JIT
                    run(page, system)
                chromium = [psutil.Process(pid) for pid in browser.pids()]
                for i in range(args.runs):
                    # Rotate the order so no system always runs first (or after another).
                    k = i % len(systems)
                    for system in systems[k:] + systems[:k]:
                        b0, s0 = cpu_seconds(chromium), cpu_seconds([servers[system]])
                        seconds = run(page, system)
                        rates[system].append(size / seconds / 2**20)
                        browser_cpu[system].append((cpu_seconds(chromium) - b0) * 2**30 / size)
                        server_cpu[system].append((cpu_seconds([servers[system]]) - s0) * 2**30 / size)
                if args.profile:
                    for system in systems:
                        profiles[system] = profiled(page, system)
        finally:
            pb.kill()
            raw.kill()
            raw_1m.kill()
    rows = rows_from(rates, RAW)
    hashed = statistics.median(rates[RAW_HASHED])
    raw_1m_rate = statistics.median(rates[RAW_1M])
    for row in rows:
        name = str(row["system"])
        row["x_hashed_raw"] = float(row["median"]) / hashed  # type: ignore[arg-type]
        row["x_raw_1m"] = float(row["median"]) / raw_1m_rate  # type: ignore[arg-type]
        row["browser_cpu_s_per_gib"] = statistics.median(browser_cpu[name])
        row["server_cpu_s_per_gib"] = statistics.median(server_cpu[name])
    print_table(f"Browser throughput, {args.size_mib} MiB into headless Chromium, {args.runs} runs each "
                "(MiB/s; ratio to the count-only raw WebSocket)", rows)
    print(f"\n{'system':36} {'x hashed raw':>12} {'x raw 1 MiB':>11} {'browser CPU s/GiB':>18} "
          f"{'server CPU s/GiB':>17}")
    for row in rows:
        print(f"{row['system']!s:36} {row['x_hashed_raw']:12.2f} {row['x_raw_1m']:11.2f} "
              f"{row['browser_cpu_s_per_gib']:18.2f} {row['server_cpu_s_per_gib']:17.2f}")
    for system, self_time in profiles.items():
        per_gib = 1000 * 2**30 / size
        native = {name: self_time.get(name, 0.0) for name in ("(program) :0", "(idle) :0", "(garbage collector) :0")}
        script = sum(self_time.values()) - sum(native.values())
        print(f"\n{system}: renderer main thread, self time in ms per GiB (sampling profiler): "
              f"script and WebAssembly {script * per_gib:.0f}, garbage collector "
              f"{native['(garbage collector) :0'] * per_gib:.0f}, Chromium's own {native['(program) :0'] * per_gib:.0f}")
        for name, seconds in sorted(self_time.items(), key=lambda kv: -kv[1])[:16]:
            print(f"{seconds * per_gib:9.1f}  {name}")
    result = {"scenario": "browser", "size_mib": args.size_mib, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browser.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
