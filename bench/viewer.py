"""The viewer's memory and smoothness in headless Chromium (``python -m bench.browser --scenario viewer``).

Memory: the JS heap after a full collection (DevTools ``Runtime.getHeapUsage``)
and the renderer process's RSS (from /proc: the Chromium renderers started
by this process), sampled at each step of a walk through a 2 GiB log and on
a 64 MiB file without a newline.  Targets (issue 12): heap < 64 MiB, renderer
RSS < 300 MiB.

Follow: a writer thread appends numbered lines (13 bytes each) at a given
rate in 10 ms batches while the viewer follows; the page records every
requestAnimationFrame interval and every long task.  Targets: at 2 000
lines/s, 60 fps with no long task over 50 ms; at 20 000 lines/s, it keeps up
(or says it samples).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, machine, start

MIB = 2**20
PROBE = """() => {
  window.__perf = { intervals: [], long: [], last: performance.now() };
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__perf.long.push(e.duration); })
    .observe({ type: "longtask" });
  const frame = (t) => { window.__perf.intervals.push(t - window.__perf.last); window.__perf.last = t; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""
STATE = "window.pagebridgeViewer.state()"


def numbered(count: int, start: int = 0) -> bytes:
    return b"".join(b"line %07d\n" % i for i in range(start, start + count))


def renderer_rss_mib() -> float:
    """The largest RSS among the Chromium renderer processes descended from this process."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdlines[int(pid)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                changed = True
    best = 0.0
    for pid in mine:
        if "--type=renderer" not in cmdlines.get(pid, ""):
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return best


def heap_mib(page: Any) -> float:
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    cdp.detach()
    return float(used) / MIB


def wait(page: Any, predicate: str, timeout: float = 60_000) -> Any:
    page.wait_for_function(f"() => {{ const s = window.pagebridgeViewer && {STATE}; return s && ({predicate}); }}",
                           timeout=timeout)
    return page.evaluate(STATE)


def make_sparse_log(path: Path, size: int) -> None:
    """A sparse file of `size` bytes with 16 MiB of numbered lines at 0, 50 %, 90 % and the end."""
    block = numbered(16 * MIB // 13)
    with open(path, "wb") as f:
        f.truncate(size)
        for at in (0, size // 2, size * 9 // 10, size - len(block)):
            f.seek(at - at % 13)
            f.write(block)


def memory(browser: Any, url: str, folder: Path) -> dict[str, Any]:
    make_sparse_log(folder / "big.log", 2 * 2**30)
    with open(folder / "one.txt", "wb") as f:
        chunk = b"abcdefghijklmnopqrstuvwxyz012345" * (MIB // 32)
        for _ in range(64):
            f.write(chunk)
    samples: list[dict[str, Any]] = []
    page = browser.new_page(viewport={"width": 1280, "height": 800})

    def sample(step: str) -> None:
        time.sleep(0.5)
        state = page.evaluate(STATE)
        samples.append({"step": step, "heap_mib": round(heap_mib(page), 1), "rss_mib": round(renderer_rss_mib(), 1),
                        "held_mib": round(state["held"] / MIB, 2), "rows": state["rows"]})
        print(f"  {step:34} heap {samples[-1]['heap_mib']:6.1f} MiB   renderer RSS {samples[-1]['rss_mib']:6.1f} MiB"
              f"   held {samples[-1]['held_mib']:5.2f} MiB", flush=True)

    t0 = time.monotonic()
    page.goto(url + "#/big.log")
    wait(page, "s.rows > 0")
    first_row = time.monotonic() - t0
    wait(page, "s.reading === 'window-full'")
    sample("2 GiB log: top, window full")
    for target, label in (("50%", "jump to 50 %"), ("90%", "jump to 90 %")):
        page.fill("#jump-to", target)
        page.press("#jump-to", "Enter")
        wait(page, "s.reading === 'window-full' || s.reading === 'idle'")
        sample(f"2 GiB log: {label}")
    page.locator("#lines").focus()
    for _ in range(300):
        page.keyboard.press("k")
    wait(page, "s.reads.indexOf('back') === -1")
    sample("2 GiB log: 300 lines up")
    page.keyboard.press("End")
    wait(page, "s.atEnd")
    sample("2 GiB log: end")
    page.keyboard.press("Home")
    wait(page, "s.topOffset === 0 && s.reading === 'window-full'")
    sample("2 GiB log: top again")
    page.goto(url + "#/one.txt")
    wait(page, "s.path === 'one.txt' && (s.reading === 'long-line' || s.atEnd)")
    sample("64 MiB without a newline")
    page.close()
    return {"first_row_s": round(first_row, 3), "samples": samples,
            "heap_max_mib": max(s["heap_mib"] for s in samples), "rss_max_mib": max(s["rss_mib"] for s in samples)}


def follow(browser: Any, url: str, folder: Path, rate: int, seconds: float) -> dict[str, Any]:
    path = folder / f"follow-{rate}.log"
    path.write_bytes(numbered(1000))
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url + f"#/{path.name}:end")
    wait(page, "s.reading === 'following' && s.rows >= 1000")
    page.evaluate(PROBE)
    written = [1000]
    lag: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        per_batch = max(1, rate // 100)
        started = time.monotonic()
        with open(path, "ab", buffering=0) as f:
            n = 0
            while not stop.is_set():
                due = started + n * 0.01
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                f.write(numbered(per_batch, written[0]))
                written[0] += per_batch
                n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(0.25)
        end = page.evaluate(STATE)["end"]
        lag.append((13 * written[0] - end) / 13)
    stop.set()
    thread.join()
    wrote = time.monotonic() - t0
    total = written[0]
    t1 = time.monotonic()
    state = wait(page, f"s.end === {13 * total}", timeout=120_000)
    catch_up = time.monotonic() - t1
    perf = page.evaluate("window.__perf")
    last = page.evaluate("window.pagebridgeViewer.visibleText().slice(-1)[0]")
    page.close()
    intervals = sorted(perf["intervals"][1:])
    fps = len(intervals) / (sum(intervals) / 1000) if intervals else 0.0
    return {
        "rate_lines_s": rate, "lines": total - 1000, "seconds": round(wrote, 1),
        "achieved_lines_s": round((total - 1000) / wrote),
        "fps": round(fps, 1),
        "frame_p50_ms": round(statistics.median(intervals), 1) if intervals else None,
        "frame_p95_ms": round(intervals[int(len(intervals) * 0.95)], 1) if intervals else None,
        "frame_max_ms": round(intervals[-1], 1) if intervals else None,
        "long_tasks": len(perf["long"]), "long_task_max_ms": round(max(perf["long"], default=0), 1),
        "lag_lines_median": round(statistics.median(lag)), "lag_lines_max": round(max(lag)),
        "catch_up_s": round(catch_up, 2), "last_line_shown": last.endswith(f"line {total - 1:07d}"),
        "state": state["reading"], "held_mib": round(state["held"] / MIB, 2),
    }


def run(seconds: float = 10.0) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    result: dict[str, Any] = {"scenario": "viewer", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="pagebridge-viewer-") as tmp:
        folder = Path(tmp)
        server, url = start([sys.executable, "-m", "bridge", "serve", tmp, "--port", "0"], r"viewer:\s+(\S+)")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                print("memory (2 GiB sparse log, then 64 MiB without a newline):", flush=True)
                result["memory"] = memory(browser, url, folder)
                result["follow"] = []
                for rate in (2_000, 20_000):
                    print(f"follow at {rate} lines/s for {seconds:.0f} s:", flush=True)
                    r = follow(browser, url, folder, rate, seconds)
                    print("  " + ", ".join(f"{k} {v}" for k, v in r.items()), flush=True)
                    result["follow"].append(r)
                browser.close()
        finally:
            server.kill()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "viewer.json").write_text(json.dumps(result, indent=2))
    return result
