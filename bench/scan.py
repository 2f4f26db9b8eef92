"""Scan: ``pagebridge grep`` beside GNU grep on one page-cached log, and the engines.

Three tables, one run:

* **grep**: whole processes, alternating, on the same file: ``pagebridge grep
  -c`` against ``grep -c`` (``-F`` literals, ``-E`` regexes; ``LC_ALL=C.UTF-8``
  for both), then ``-n`` with every matching line printed (to /dev/null).
  The server (``pagebridge serve``, its own process) keeps running; counts
  must be identical.  Rates are MiB of log per second, wall time of the
  client process (its start-up, connection, the server's scan and the
  output included); ratio = pagebridge / grep, higher is better.
* **memory**: the server's RSS growth while it scans the whole log
  (sampled every 10 ms), and its line-index cache after ``locate``.
* **engines**: in one process, the matching engines counting matching
  lines in the same 128 MiB (page-cached, already in memory): ``bytes.find``
  and ``bytes.count`` (occurrences, an upper bound), ``re``, ``regex``
  (PyPI), RE2 through its ``re``-like wrapper and directly, Hyperscan, and
  what the server runs (``count_lines``).  Engines not installed are skipped
  (``pip install regex hyperscan`` to include them).

    python -m bench.scan [--size-mib 600] [--runs 5] [--log PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, machine, start

PY = sys.executable
MiB = 2**20
#: (grep flag, pattern, what it shows)
PATTERNS = [
    ("-F", "checksum mismatch", "literal, 1 line in 10"),
    ("-F", "ERROR", "literal, 1 line in 33"),
    ("-F", "zebra-not-here", "literal, no match"),
    ("-E", "5[0-9][0-9] [0-9]+ms user=(alice|bob)", "regex, 1 line in 24"),
    ("-E", "ERROR.*timeout", "regex, 1 line in 335"),
]
GREP_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}


# ---------------------------------------------------------------- the log


def make_log(path: Path, size: int, seed: int = 11) -> None:
    """A deterministic web-server-like log of ``size`` bytes (UTF-8, some long lines)."""
    rnd = random.Random(seed)
    levels = ["INFO"] * 70 + ["DEBUG"] * 20 + ["WARN"] * 7 + ["ERROR"] * 3
    paths = ["/api/v1/items", "/api/v1/users", "/health", "/static/app.js", "/api/v2/search", "/login"]
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
             "zoë", "łukasz"]
    messages = ["request served", "cache miss", "upstream timeout after 30s", "retrying connection",
                "slow query detected", "user logged in", "session expired", "payload too large",
                "checksum mismatch on block", "GC pause"]
    # A pool of distinct lines, then the file drawn from it: realistic
    # variety at the speed of random.choices.
    pool = []
    t = 1714550000.0
    for _ in range(200_000):
        t += rnd.random() * 0.01
        pool.append(("%.3f %s [worker-%d] %s %s/%d %d %dms user=%s msg=\"%s\" req=%016x\n" % (  # noqa: UP031
            t, rnd.choice(levels), rnd.randrange(32), rnd.choice(("GET", "POST", "PUT")),
            rnd.choice(paths), rnd.randrange(100000), rnd.choice((200, 200, 200, 201, 304, 404, 500, 503)),
            rnd.randrange(2000), rnd.choice(users), rnd.choice(messages), rnd.getrandbits(64))).encode())
    with open(path, "wb") as f:
        written = 0
        while written < size:
            block = b"".join(rnd.choices(pool, k=20_000))
            if rnd.random() < 0.05:
                block += b"stack trace: " + b"x" * rnd.randrange(100_000, 400_000) + b"\n"
            block = block[: size - written]
            f.write(block)
            written += len(block)


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(8 * MiB):
            pass


# ---------------------------------------------------------------- whole processes


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, int]:
    elapsed, out, code, _ = timed_cpu(cmd, env)
    return elapsed, out, code


def timed_cpu(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, int, float]:
    """Wall time, stdout, exit status and CPU seconds (user + system) of one process."""
    cpu = _children_cpu()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
    elapsed = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} failed ({out.returncode}): {out.stderr.decode()[-300:]}")
    return elapsed, out.stdout.decode(errors="replace").strip(), out.returncode, _children_cpu() - cpu


def _server_cpu(server: Any) -> float:
    times = server.cpu_times()
    return float(times.user + times.system)


def startup(runs: int) -> dict[str, Any]:
    """``pagebridge grep -c`` on a one-line file (its own server): the client's fixed cost."""
    with tempfile.TemporaryDirectory(prefix="pagebridge-startup-") as tmp:
        (Path(tmp) / "tiny.log").write_bytes(b"one line\ntwo ERROR\n")
        proc, url = start([PY, "-m", "bridge", "serve", tmp, "--port", "0"], r"websocket: (\S+)")
        walls, cpus, bare_walls, bare_cpus = [], [], [], []
        try:
            for _ in range(runs):
                t, out, _, cpu = timed_cpu([PY, "-m", "bridge", "grep", "-c", "-F", "ERROR", url, "tiny.log"])
                assert out == "1", out
                walls.append(t)
                cpus.append(cpu)
                t, _, _, cpu = timed_cpu([PY, "-c", "pass"])
                bare_walls.append(t)
                bare_cpus.append(cpu)
        finally:
            proc.kill()
            proc.wait(10)
    row = {"grep -c wall s": statistics.median(walls), "grep -c CPU s": statistics.median(cpus),
           "python -c pass wall s": statistics.median(bare_walls),
           "python -c pass CPU s": statistics.median(bare_cpus), "runs": runs}
    print("  start-up: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)),
          flush=True)
    return row


def versus_grep(url: str, log: Path, runs: int, server: Any = None, *,
                literals_only: bool = False) -> list[dict[str, Any]]:
    """Side by side, alternating; ``server`` (a psutil.Process) adds its CPU seconds per -c run."""
    size = log.stat().st_size / MiB
    rows = []
    for flag, pattern, what in PATTERNS:
        if literals_only and flag != "-F":
            continue
        for mode in ("-c",) if literals_only else ("-c", "-n"):
            if mode == "-n" and pattern != PATTERNS[0][1] and pattern != PATTERNS[3][1]:
                continue
            ours: list[float] = []
            theirs: list[float] = []
            client_cpu: list[float] = []
            server_cpu: list[float] = []
            grep_cpu: list[float] = []
            counts: set[str] = set()
            for _ in range(runs):
                if mode == "-c":
                    before = _server_cpu(server) if server is not None else 0.0
                    t, out, _, cpu = timed_cpu([PY, "-m", "bridge", "grep", mode, flag, pattern, url, log.name])
                    if server is not None:
                        server_cpu.append(_server_cpu(server) - before)
                    client_cpu.append(cpu)
                    counts.add(out)
                    ours.append(size / t)
                    t, out, _, cpu = timed_cpu(["grep", mode, flag, pattern, str(log)], GREP_ENV)
                    grep_cpu.append(cpu)
                    counts.add(out)
                    theirs.append(size / t)
                else:
                    shell = f"{PY} -m bridge grep -n {flag} '{pattern}' {url} {log.name} | md5sum"
                    t0 = time.perf_counter()
                    a = subprocess.run(shell, shell=True, capture_output=True, text=True).stdout
                    ours.append(size / (time.perf_counter() - t0))
                    t0 = time.perf_counter()
                    b = subprocess.run(f"grep -n {flag} '{pattern}' {log} | md5sum", shell=True,
                                       capture_output=True, text=True, env=GREP_ENV).stdout
                    theirs.append(size / (time.perf_counter() - t0))
                    counts.update((a, b))
            name = f"{mode} {flag} '{pattern}' ({what})"
            med_ours, med_theirs = statistics.median(ours), statistics.median(theirs)
            rows.append({"command": name, "pagebridge MiB/s": med_ours, "grep MiB/s": med_theirs,
                         "ratio": med_ours / med_theirs, "pb min-max": f"{min(ours):.0f}-{max(ours):.0f}",
                         "grep min-max": f"{min(theirs):.0f}-{max(theirs):.0f}",
                         "identical": len(counts) == 1, "runs": runs})
            cpu = ""
            if client_cpu:
                rows[-1].update({"client CPU s": statistics.median(client_cpu),
                                 "server CPU s": statistics.median(server_cpu) if server_cpu else None,
                                 "grep CPU s": statistics.median(grep_cpu)})
                cpu = (f"; CPU s: client {statistics.median(client_cpu):.3f}"
                       + (f" server {statistics.median(server_cpu):.3f}" if server_cpu else "")
                       + f" grep {statistics.median(grep_cpu):.3f}")
            print(f"  {name}: {med_ours:.0f} vs {med_theirs:.0f} MiB/s "
                  f"({med_ours / med_theirs:.2f}x), identical={len(counts) == 1}{cpu}", flush=True)
    return rows


def server_memory(folder: Path, log: Path) -> dict[str, Any]:
    """RSS growth of a fresh server during a whole-file scan, and after locate built an index."""
    import psutil

    server, url = start([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)")
    try:
        timed([PY, "-m", "bridge", "ls", url])  # one connection first: what any client costs
        return _sample(psutil.Process(server.pid), url, log)
    finally:
        server.kill()
        server.wait(10)


def _sample(proc: Any, url: str, log: Path) -> dict[str, Any]:
    base = proc.memory_info().rss
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        timed([PY, "-m", "bridge", "grep", "-n", "-F", "checksum mismatch", url, log.name])
        timed([PY, "-m", "bridge", "cat", url, log.name, "--line", "1000000", "--lines", "1"])
    finally:
        stop.set()
        sampler.join()
    after = proc.memory_info().rss
    return {"server RSS before MiB": base / MiB, "peak growth MiB": (peak - base) / MiB,
            "growth after MiB": (after - base) / MiB, "target MiB": 64}


# ---------------------------------------------------------------- engines


def engines(log: Path, size: int = 128 * MiB) -> list[dict[str, Any]]:
    with open(log, "rb") as f:
        buf = f.read(size)
    stop = buf.rfind(b"\n") + 1
    mib = len(buf) / MiB

    def line_loop(search: Callable[[int], int]) -> int:
        count, pos, find = 0, 0, buf.find
        while True:
            p = search(pos)
            if p < 0 or p >= stop:
                return count
            count += 1
            pos = find(b"\n", p) + 1
            if pos <= 0:
                return count

    candidates: dict[str, Callable[[bytes, bool], Callable[[], int]]] = {}

    def find_loop(pattern: bytes, regex: bool) -> Callable[[], int]:
        if regex:
            raise NotImplementedError
        return lambda: line_loop(lambda pos: buf.find(pattern, pos, stop))

    def count_occurrences(pattern: bytes, regex: bool) -> Callable[[], int]:
        if regex:
            raise NotImplementedError
        return lambda: buf.count(pattern, 0, stop)

    def stdlib_re(pattern: bytes, regex: bool) -> Callable[[], int]:
        compiled = re.compile(pattern if regex else re.escape(pattern), re.M)

        def search(pos: int) -> int:
            found = compiled.search(buf, pos, stop)
            return found.start() if found else -1
        return lambda: line_loop(search)

    candidates["bytes.find (line loop)"] = find_loop
    candidates["bytes.count (occurrences)"] = count_occurrences
    candidates["re (stdlib, backtracking)"] = stdlib_re
    try:
        import regex as regex_module

        def pypi_regex(pattern: bytes, regex: bool) -> Callable[[], int]:
            compiled = regex_module.compile(pattern if regex else regex_module.escape(pattern),
                                            regex_module.M)

            def search(pos: int) -> int:
                found = compiled.search(buf, pos, stop)
                return found.start() if found else -1
            return lambda: line_loop(search)
        candidates["regex (PyPI, backtracking)"] = pypi_regex
    except ImportError:
        pass
    import re2

    def re2_wrapper(pattern: bytes, regex: bool) -> Callable[[], int]:
        options = re2.Options()
        options.never_nl = True
        options.literal = not regex
        compiled = re2.compile(pattern, options)

        def search(pos: int) -> int:
            found = compiled.search(buf, pos, stop)
            return found.start() if found else -1
        return lambda: line_loop(search)
    candidates["re2 (google-re2, re-like API)"] = re2_wrapper

    def ours(pattern: bytes, regex: bool) -> Callable[[], int]:
        from bridge.scan.matcher import compile_pattern

        matcher = compile_pattern(pattern, regex=regex)
        return lambda: matcher.count_lines(buf, 0, stop, False)

    def ours_pure(pattern: bytes, regex: bool) -> Callable[[], int]:
        from bridge.scan import matcher as matcher_module

        matcher = matcher_module.compile_pattern(pattern, regex=regex)

        def run() -> int:
            saved, matcher_module.SIMD = matcher_module.SIMD, None
            try:
                return matcher.count_lines(buf, 0, stop, False)
            finally:
                matcher_module.SIMD = saved
        return run

    def split_contains(pattern: bytes, regex: bool) -> Callable[[], int]:
        # The chosen method with CPython's own split: an occurrence starts a
        # new line when the text since the previous one holds a newline.
        if regex:
            raise NotImplementedError

        def run() -> int:
            pieces = buf[:stop].split(pattern)
            return 0 if len(pieces) < 2 else 1 + sum(b"\n" in piece for piece in pieces[1:-1])
        return run

    candidates["pagebridge count_lines, pure loop (find + RE2)"] = ours_pure
    candidates["bytes.split + newline test"] = split_contains
    try:
        import stringzilla as sz

        def sz_count(pattern: bytes, regex: bool) -> Callable[[], int]:
            if regex:
                raise NotImplementedError
            return lambda: int(sz.count(buf, pattern, 0, stop))

        def sz_find_loop(pattern: bytes, regex: bool) -> Callable[[], int]:
            if regex:
                raise NotImplementedError
            text = sz.Str(buf)
            return lambda: line_loop(lambda pos: int(text.find(pattern, pos, stop)))

        candidates["StringZilla count (occurrences)"] = sz_count
        candidates["StringZilla find (line loop)"] = sz_find_loop
    except ImportError:
        pass
    try:
        import numpy as np

        def numpy_lines(pattern: bytes, regex: bool) -> Callable[[], int]:
            # Occurrences where the literal's last byte is, checked byte by
            # byte; then the line of each by a search among the newlines.
            if regex:
                raise NotImplementedError
            arr = np.frombuffer(buf, np.uint8)[:stop]
            lit = np.frombuffer(pattern, np.uint8)
            size = len(pattern)

            def run() -> int:
                starts = np.flatnonzero(arr[size - 1:] == lit[-1])
                keep = np.ones(len(starts), bool)
                for j in range(size - 1):
                    keep &= arr[starts + j] == lit[j]
                found = starts[keep]
                if not len(found):
                    return 0
                lines = np.searchsorted(np.flatnonzero(arr == 10), found)
                return 1 + int(np.count_nonzero(np.diff(lines)))
            return run
        candidates["numpy (byte compare + newline search)"] = numpy_lines
    except ImportError:
        pass
    candidates["pagebridge count_lines (StringZilla when installed)"] = ours
    try:
        import hyperscan

        def hs(pattern: bytes, regex: bool) -> Callable[[], int]:
            db = hyperscan.Database()
            db.compile(expressions=[pattern if regex else re.escape(pattern)], ids=[0], elements=1,
                       flags=[hyperscan.HS_FLAG_MULTILINE])

            def run() -> int:
                state = [0, -1]

                def on_match(_id: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                    if to > state[1] and to <= stop:
                        state[0] += 1
                        state[1] = buf.find(b"\n", to)
                db.scan(buf[:stop], match_event_handler=on_match)
                return state[0]
            return run
        candidates["hyperscan (callback per match)"] = hs
    except ImportError:
        pass

    rows = []
    for _flag, pattern, what in PATTERNS:
        raw = pattern.encode()
        regex = _flag == "-E"
        row: dict[str, Any] = {"pattern": f"{pattern} ({what})"}
        counts = set()
        for name, make in candidates.items():
            try:
                fn = make(raw, regex)
            except NotImplementedError:
                row[name] = None
                continue
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                result = fn()
                best = min(best, time.perf_counter() - t0)
            if "occurrences" not in name:
                counts.add(result)
            elif "regex" not in what:
                row[name + " = lines"] = result == max(counts, default=result)
            row[name] = mib / best
        row["counts agree"] = len(counts) == 1
        rows.append(row)
        print(f"  {pattern}: " + ", ".join(f"{k} {v:.0f}" for k, v in row.items()
                                             if isinstance(v, float)), flush=True)
    return rows


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--log", type=Path, help="use this log instead of generating one")
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--literals-only", action="store_true",
                        help="only the -c -F rows (a quicker run, e.g. on a larger log)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="pagebridge-scan-") as tmp:
        if args.log:
            folder, log = args.log.resolve().parent, args.log.resolve()
        else:
            folder = Path(tmp)
            log = folder / "app.log"
            print(f"writing a {args.size_mib} MiB log...", flush=True)
            make_log(log, args.size_mib * MiB)
        warm(log)
        # The client runs from bytecode, as an installed package does (this
        # environment may set PYTHONDONTWRITEBYTECODE and compile every start).
        subprocess.run([PY, "-m", "compileall", "-q", str(Path(__file__).resolve().parent.parent / "bridge")],
                       check=True)
        print("start-up (a one-line file):", flush=True)
        results["startup"] = startup(args.runs * 2)
        proc, url = start([PY, "-m", "bridge", "serve", str(folder), "--port", "0"], r"websocket: (\S+)")
        try:
            import psutil

            print("grep -c / -n, whole processes:", flush=True)
            results["grep"] = versus_grep(url, log, args.runs, psutil.Process(proc.pid),
                                          literals_only=args.literals_only)
        finally:
            proc.kill()
            proc.wait(10)
        if not args.literals_only:
            results["memory"] = [server_memory(folder, log)]
        if not args.skip_engines:
            print("engines, 128 MiB in memory (MiB/s):", flush=True)
            results["engines"] = engines(log)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scan.json").write_text(json.dumps(results, indent=2, default=str))
    if "memory" in results:
        print("memory: " + ", ".join(f"{k} {v:.1f}" for k, v in results["memory"][0].items()))
    return results


if __name__ == "__main__":
    main()
