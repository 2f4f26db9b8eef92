"""Scenario 10, objects: one object from a local S3 server, paged beside plain s3fs.

moto's standalone S3 server runs in its own process on 127.0.0.1; the object
(random bytes) is uploaded once.  Each receiver is a process of its own that
hashes everything it gets and prints ``<bytes> <sha256> elapsed=<s>``; the
harness checks the sha256.  Systems:

* ``s3fs cat_file (one GET)``: the reference, the whole object in one GET;
* ``s3fs open().read (ranged GETs)``: s3fs's file object, 4 MiB reads, its
  default block size;
* ``pagebridge (collector)``: ``pagebridge serve s3://...`` pages the object
  (ranged GETs of ``read_ahead`` bytes, one block ahead) to the Python
  collector over loopback.

``python -m bench.objects --size-mib 256 --runs 3``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import print_table, rows_from
from bench.suite import PY, receive, servers

MiB = 1 << 20
BUCKET = "pb-bench"
KEY = "object.bin"


def upload(moto: Any, size: int) -> str:
    """Put ``size`` random bytes at s3://pb-bench/object.bin; their sha256."""
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            digest.update(block)
            f.write(block)
            left -= len(block)
        f.seek(0)
        s3.upload_fileobj(f, BUCKET, KEY)
    return digest.hexdigest()


def s3fs_receive(url: str, ranged: bool) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    digest = hashlib.sha256()
    size = 0
    t0 = time.perf_counter()
    if ranged:
        with fs.open(url, "rb", block_size=4 * MiB) as f:
            while chunk := f.read(4 * MiB):
                digest.update(chunk)
                size += len(chunk)
    else:
        data = fs.cat_file(url)
        digest.update(data)
        size = len(data)
    print(size, digest.hexdigest(), f"elapsed={time.perf_counter() - t0:.6f}")


def run(size: int, runs: int) -> list[dict[str, Any]]:
    """The scenario: rows {system, median, min, max, ratio, unit} (ratio to one s3fs GET)."""
    from tests.moto_support import ROOT, MotoServer

    with MotoServer() as moto:
        os.environ.update(ROOT.env(moto.endpoint))
        expected = upload(moto, size)
        url = f"s3://{BUCKET}/{KEY}"
        with servers(([PY, "-m", "bridge", "serve", f"s3://{BUCKET}", "--port", "0"], r"websocket: (\S+)"),
                     ) as (pb_url,):
            systems = {
                "s3fs cat_file (one GET)": [PY, "-m", "bench.objects", "s3fs-receive", url],
                "s3fs open().read (ranged GETs)": [PY, "-m", "bench.objects", "s3fs-receive", url, "--ranged"],
                "pagebridge (collector)": [PY, "-m", "bench.peers", "pagebridge-receive", pb_url, KEY],
            }
            rates: dict[str, list[float]] = {name: [] for name in systems}
            for _ in range(runs):
                for name, cmd in systems.items():
                    rates[name].append(receive(cmd, expected, size))
    return rows_from(rates, "s3fs cat_file (one GET)")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "s3fs-receive":
        s3fs_receive(args[1], "--ranged" in args)
        return []
    parser = argparse.ArgumentParser(prog="python -m bench.objects", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args(args)
    rows = run(options.size_mib * MiB, options.runs)
    print_table(f"objects: {options.size_mib} MiB from moto's S3 server", rows)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
