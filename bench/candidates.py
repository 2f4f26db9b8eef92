"""Candidates side by side in one run: throughput and CPU per GiB of each side.

    python -m bench.candidates [--size-mib 512] [--runs 5] [--before REF] [--set NAME ...]

Every server runs in its own process; the receivers alternate, run after
run, so each candidate meets the same machine load as the others.  Beside
the median rate (and its ratio to raw websockets) the table gives the CPU
seconds per GiB of the server and of the receiver (as the receiver counts
it, without its start-up; then its whole process's user and system time
apart; "whole" is the rate over the receiver process's whole life, start-up
included): on this shared two-core machine wall-clock rates swing by 2x from
one minute to the next, CPU per GiB much less, so a change that saves work
shows there first.

``--before REF`` adds "pagebridge @REF" systems: the same receivers and
server run from a copy of that commit (``git archive``), so a change is
measured against what it replaces in the same run.

Sets (``--set``): ``runtime`` (uvloop, a larger socket read size, the
client's websockets max_queue), ``before`` (this tree against REF, collector
and ``get``), ``get`` (``get`` to a file against aiohttp's download).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.harness import REPO, RESULTS, machine, start
from bench.suite import RTT_RECEIVER, make_file

PY = sys.executable
MiB = 2**20


def receiver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def receiver_times() -> tuple[float, float]:
    """User and system CPU of the finished receivers so far (whole processes, start-up included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def process_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def export(ref: str, dest: Path) -> Path:
    """A copy of the repository at ``ref`` (committed files only)."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO, check=True,
                             capture_output=True).stdout
    tar_path = dest / "ref.tar"
    tar_path.write_bytes(archive)
    root = dest / "ref"
    with tarfile.open(tar_path) as tar:
        tar.extractall(root, filter="data")
    return root


def run(sets: list[str], size: int, runs: int, before: str | None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="pagebridge-cand-") as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        data = folder / "data.bin"
        expected = make_file(data, size)
        out = Path(tmp) / "out.bin"
        ref_root = export(before, Path(tmp)) if before else None
        # A process of the copy runs in it: `python -m` and `-c` put the
        # working directory first on sys.path, ahead of PYTHONPATH and of the
        # editable install of this tree.
        ref_env = {**os.environ, "PYTHONPATH": str(ref_root)} if ref_root else None

        def cwd_of(env: dict[str, str] | None) -> Path:
            return ref_root if env is not None and ref_root is not None else REPO

        serve = [PY, "-m", "bridge", "serve", str(folder), "--port", "0"]
        variant = [PY, "-m", "bench.variant"]
        # name -> (command, pattern, env)
        server_specs: dict[str, tuple[list[str], str, dict[str, str] | None]] = {
            "pb": (serve, r"websocket: (\S+)", None),
            "raw": ([PY, "-m", "bench.peers", "raw-ws-server", str(data), "0"], r"ready (\d+)", None),
        }
        # name -> (server, receiver command with {url}/{port}, env)
        systems: dict[str, tuple[str, list[str], dict[str, str] | None]] = {
            "raw websockets": ("raw", [PY, "-m", "bench.peers", "raw-ws-receive", "ws://127.0.0.1:{port}"], None),
            "pagebridge (collector)": ("pb", [PY, "-m", "bench.peers", "pagebridge-receive", "{url}",
                                              "data.bin"], None),
        }
        if "malloc" in sets:
            server_specs["pb-malloc"] = ([*variant, "--malloc", "--", "-m", *serve[2:]], r"websocket: (\S+)", None)
            server_specs["raw-malloc"] = ([*variant, "--malloc", "--", "-m", "bench.peers", "raw-ws-server",
                                           str(data), "0"], r"ready (\d+)", None)
            receive = ["-m", "bench.peers", "pagebridge-receive", "{url}", "data.bin"]
            systems |= {
                "raw websockets, malloc both": ("raw-malloc", [*variant, "--malloc", "--", "-m", "bench.peers",
                                                               "raw-ws-receive", "ws://127.0.0.1:{port}"], None),
                "pagebridge, malloc both": ("pb-malloc", [*variant, "--malloc", "--", *receive], None),
                "pagebridge, malloc server": ("pb-malloc", [*variant, "--", *receive], None),
            }
        if "collector" in sets:
            server_specs["pb-malloc"] = ([*variant, "--malloc", "--", "-m", *serve[2:]], r"websocket: (\S+)", None)
            receive = ["-m", "bench.peers", "pagebridge-receive", "{url}", "data.bin"]
            systems |= {
                "pagebridge, malloc server": ("pb-malloc", [*variant, "--", *receive], None),
                "pagebridge, malloc server, uvloop collector": ("pb-malloc", [*variant, "--uvloop", "--",
                                                                              *receive], None),
                "pagebridge, malloc server, malloc collector": ("pb-malloc", [*variant, "--malloc", "--",
                                                                              *receive], None),
                "pagebridge, malloc server, read 1 MiB": ("pb-malloc", [*variant, "--read-size", str(MiB), "--",
                                                                        *receive], None),
            }
        if "runtime" in sets:
            server_specs["pb-uvloop"] = ([*variant, "--uvloop", "--", "-m", *serve[2:]], r"websocket: (\S+)", None)
            server_specs["pb-malloc"] = ([*variant, "--malloc", "--", "-m", *serve[2:]], r"websocket: (\S+)", None)
            server_specs["raw-malloc"] = ([*variant, "--malloc", "--", "-m", "bench.peers", "raw-ws-server",
                                           str(data), "0"], r"ready (\d+)", None)
            server_specs["raw-uvloop"] = ([*variant, "--uvloop", "--", "-m", "bench.peers", "raw-ws-server",
                                           str(data), "0"], r"ready (\d+)", None)
            receive = ["-m", "bench.peers", "pagebridge-receive", "{url}", "data.bin"]
            systems |= {
                "raw websockets, uvloop both": ("raw-uvloop", [*variant, "--uvloop", "--", "-m", "bench.peers",
                                                               "raw-ws-receive", "ws://127.0.0.1:{port}"], None),
                "pagebridge, uvloop both": ("pb-uvloop", [*variant, "--uvloop", "--", *receive], None),
                "pagebridge, uvloop server": ("pb-uvloop", [*variant, "--", *receive], None),
                "pagebridge, uvloop collector": ("pb", [*variant, "--uvloop", "--", *receive], None),
                "raw websockets, malloc both": ("raw-malloc", [*variant, "--malloc", "--", "-m", "bench.peers",
                                                               "raw-ws-receive", "ws://127.0.0.1:{port}"], None),
                "pagebridge, malloc both": ("pb-malloc", [*variant, "--malloc", "--", *receive], None),
                "pagebridge, read 1 MiB": ("pb", [*variant, "--read-size", str(MiB), "--", *receive], None),
                "pagebridge, read 64 KiB": ("pb", [*variant, "--read-size", str(64 << 10), "--", *receive], None),
            }
        if "get" in sets or "before" in sets:
            server_specs["http"] = ([PY, "-m", "bench.peers", "aiohttp-server", str(data), "0"], r"ready (\d+)",
                                    None)
            systems |= {
                "pagebridge get (to file, sha256)": ("pb", [PY, "-m", "bridge", "get", "{url}", "data.bin", "-o",
                                                            str(out), "--sha256", "-q", "--report"], None),
                "HTTP aiohttp (to file, sha256)": ("http", [PY, "-m", "bench.peers", "http-receive", "{port}",
                                                            str(out)], None),
            }
        if ref_root is not None and ref_env is not None:
            server_specs["pb-ref"] = (serve, r"websocket: (\S+)", ref_env)
            systems |= {
                # This tree's receiver script (by path, so that it reports its
                # own CPU time as the others do) on the copy's bridge package.
                f"pagebridge (collector) @{before}": ("pb-ref", [PY, str(REPO / "bench" / "peers.py"),
                                                                 "pagebridge-receive", "{url}", "data.bin"],
                                                        ref_env),
            }
            if "get" in sets or "before" in sets:
                systems[f"pagebridge get @{before}"] = ("pb-ref", [PY, "-m", "bridge", "get", "{url}", "data.bin",
                                                                   "-o", str(out), "--sha256", "-q", "--report"],
                                                        ref_env)
        if "rtt" in sets:
            # Through bench/proxy.py at a 50 ms round trip: the adaptive window against raw websockets.
            proxy = [PY, "-m", "bench.proxy", "0"]
            server_specs["raw-rtt"] = ([*proxy, "{port:raw}", "50"], r"ready (\d+)", None)
            server_specs["pb-rtt"] = ([*proxy, "{port:pb}", "50"], r"ready (\d+)", None)
            rtt_receive = [PY, "-c", RTT_RECEIVER, "ws://127.0.0.1:{port}/ws", "auto", "all"]
            systems |= {
                "raw websockets @50ms": ("raw-rtt", [PY, "-m", "bench.peers", "raw-ws-receive",
                                                     "ws://127.0.0.1:{port}"], None),
                "pagebridge default @50ms": ("pb-rtt", rtt_receive, None),
            }
            if ref_root is not None:
                server_specs["pb-ref-rtt"] = ([*proxy, "{port:pb-ref}", "50"], r"ready (\d+)", None)
                systems[f"pagebridge default @50ms @{before}"] = ("pb-ref-rtt", rtt_receive, ref_env)
        procs: dict[str, tuple[subprocess.Popen[str], str]] = {}
        try:
            for name, (cmd, pattern, env) in server_specs.items():
                # "{port:NAME}": the port of a server started before (a proxy's target).
                cmd = [re.sub(r"\{port:([\w-]+)\}", lambda match: _port(procs[match.group(1)][1]), part)
                       for part in cmd]
                procs[name] = start(cmd, pattern, env=env, cwd=cwd_of(env))
            rates: dict[str, list[float]] = {name: [] for name in systems}
            # The same over the whole process's life (start-up and imports included).
            whole: dict[str, list[float]] = {name: [] for name in systems}
            server_cpu: dict[str, list[float]] = {name: [] for name in systems}
            client_cpu: dict[str, list[float]] = {name: [] for name in systems}
            # Whole receiver processes, user and system apart: a receiver writing
            # a file spends system time copying into the page cache, and on this
            # virtual machine that copy's cost swings 5x from run to run.
            client_user: dict[str, list[float]] = {name: [] for name in systems}
            client_sys: dict[str, list[float]] = {name: [] for name in systems}
            gib = size / 2**30
            for _ in range(runs):
                for name, (server, template, env) in systems.items():
                    proc, value = procs[server]
                    cmd = [part.replace("{url}", value).replace("{port}", value) for part in template]
                    s0, c0 = process_cpu(proc.pid), receiver_cpu()
                    u0, k0 = receiver_times()
                    t0 = time.perf_counter()
                    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd_of(env), timeout=900,
                                            env=env)
                    wall = time.perf_counter() - t0
                    if result.returncode != 0 or expected not in result.stdout.split():
                        raise RuntimeError(f"{name} failed: {result.stdout[-300:]} {result.stderr[-600:]}")
                    said = dict(w.split("=", 1) for w in (result.stdout + result.stderr).split() if "=" in w)
                    rates[name].append(size / float(said.get("elapsed", wall)) / MiB)
                    whole[name].append(size / wall / MiB)
                    server_cpu[name].append((process_cpu(proc.pid) - s0) / gib)
                    # The receiver's own CPU count leaves out its start-up (imports).
                    client_cpu[name].append(float(said.get("cpu", receiver_cpu() - c0)) / gib)
                    u1, k1 = receiver_times()
                    client_user[name].append((u1 - u0) / gib)
                    client_sys[name].append((k1 - k0) / gib)
                    out.unlink(missing_ok=True)
        finally:
            for proc, _ in procs.values():
                proc.kill()
                proc.wait(10)
    reference = statistics.median(rates["raw websockets"])
    whole_reference = statistics.median(whole["raw websockets"])
    rows = []
    for name in systems:
        med = statistics.median(rates[name])
        rows.append({"system": name, "median": med, "min": min(rates[name]), "max": max(rates[name]),
                     "ratio": med / reference, "whole_process_median": statistics.median(whole[name]),
                     "whole_process_ratio": statistics.median(whole[name]) / whole_reference,
                     "server_cpu_s_per_gib": statistics.median(server_cpu[name]),
                     "receiver_cpu_s_per_gib": statistics.median(client_cpu[name]),
                     "receiver_process_user_s_per_gib": statistics.median(client_user[name]),
                     "receiver_process_sys_s_per_gib": statistics.median(client_sys[name]),
                     "runs": rates[name]})
    return rows


def _port(value: str) -> str:
    """The port in a server's announced URL (or the port itself)."""
    match = re.search(r":(\d+)(?:/|$)", value)
    return match.group(1) if match else value


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", help="a git ref to measure beside this tree")
    parser.add_argument("--set", nargs="*", default=["runtime"], choices=["runtime", "before", "get", "malloc", "collector", "rtt"])
    args = parser.parse_args(argv)
    rows = run(args.set, args.size_mib * MiB, args.runs, args.before)
    print(f"\nCandidates, {args.size_mib} MiB over loopback, {args.runs} alternating runs "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    print(f"{'system':44} {'median':>7} {'min':>7} {'max':>7} {'ratio':>6} {'whole':>6} {'ratio':>6} "
          f"{'srv s/GiB':>9} {'rcv s/GiB':>9} {'rcv user':>8} {'rcv sys':>8}")
    for r in rows:
        print(f"{r['system']:44} {r['median']:7.0f} {r['min']:7.0f} {r['max']:7.0f} {r['ratio']:6.2f} "
              f"{r['whole_process_median']:6.0f} {r['whole_process_ratio']:6.2f} "
              f"{r['server_cpu_s_per_gib']:9.2f} {r['receiver_cpu_s_per_gib']:9.2f} "
              f"{r['receiver_process_user_s_per_gib']:8.2f} {r['receiver_process_sys_s_per_gib']:8.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "candidates.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
