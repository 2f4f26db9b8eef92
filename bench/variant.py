"""Run a module under a candidate runtime setting, for side-by-side measurements.

    python -m bench.variant [--uvloop] [--read-size BYTES] -- -m MODULE ARGS...

``--uvloop`` installs uvloop's event loop policy (the candidate accelerator);
``--read-size`` sets how many bytes asyncio's socket transport reads per
``recv`` (256 KiB by default in CPython's selector loop); ``--malloc``
keeps glibc from returning freed memory to the kernel between pages
(:func:`bridge.tuning.keep_freed_memory`).  Each candidate is
measured beside the unchanged program in the same run (bench/candidates.py)
before anything of it is kept in pagebridge itself.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--read-size", type=int)
    parser.add_argument("--malloc", action="store_true")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if rest[:1] != ["-m"] or len(rest) < 2:
        raise SystemExit("usage: python -m bench.variant [options] -- -m MODULE ARGS...")
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.malloc:
        from bridge.tuning import keep_freed_memory

        keep_freed_memory()
    if args.read_size:
        from asyncio import selector_events

        selector_events._SelectorSocketTransport.max_size = args.read_size  # type: ignore[attr-defined]
    module = rest[1]
    sys.argv = [module, *rest[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
