"""Replicas and workers: real `pagebridge serve` processes, killed mid-stream.

* Two servers on the same bucket (moto's S3 server, in a subprocess), and
  two on the same folder: a download started on one, that server killed
  with SIGKILL mid-stream, is finished by the client on the other
  (``connect([url1, url2])``, resumed with ``if_match``), byte-identical.
* ``serve --workers 2``: both workers answer on one port, a push source's
  command runs once for both, ``/metrics`` adds up the workers, and
  stopping the supervisor (SIGTERM, or SIGKILL) stops every worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bridge import connect
from bridge.aio.workers import reuse_port_supported
from tests.conftest import ServerProcess
from tests.moto_support import ROOT, MotoServer

SIZE = 24 * 1024 * 1024
PAGE = 64 * 1024


def content(size: int = SIZE) -> bytes:
    block = hashlib.sha256(b"replicas").digest() * 2048  # 64 KiB, not periodic within a page
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def bucket() -> Iterator[MotoServer]:
    with MotoServer() as moto, pytest.MonkeyPatch.context() as env:
        for name, value in ROOT.env(moto.endpoint).items():
            env.setenv(name, value)
        s3 = moto.client("s3")
        s3.create_bucket(Bucket="pb-replicas")
        s3.put_object(Bucket="pb-replicas", Key="data/big.bin", Body=content())
        yield moto


async def download_killing_first(first: ServerProcess, urls: list[str], dest: Path) -> Any:
    """Download big.bin from the replicas; SIGKILL the first server once 1/4 has arrived."""
    killed = []

    def progress(done: int, total: int | None) -> None:
        if not killed and done >= SIZE // 4:
            killed.append(done)
            first.kill()

    async with connect(urls) as session:
        assert session.url == urls[0]
        result = await session.download("big.bin", dest, progress=progress, page_size=PAGE, window=4)
        assert session.url == urls[1]  # it moved to the second replica
    assert killed, "the first server was never killed: the download did not go through it"
    return result


async def test_download_survives_a_killed_replica_on_one_bucket(bucket: MotoServer, server_process: Any,
                                                                tmp_path: Path) -> None:
    """Two servers on one bucket: kill the one serving, the client resumes on the other."""
    first = server_process(folder="s3://pb-replicas/data")
    second = server_process(folder="s3://pb-replicas/data")
    urls = [first.start(), second.start()]
    result = await download_killing_first(first, urls, tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == content()
    assert (result.bytes, result.received, result.resumed_from) == (SIZE, SIZE, 0)
    assert not (tmp_path / "big.bin.part").exists()


async def test_download_survives_a_killed_replica_on_one_folder(server_process: Any, tmp_path: Path) -> None:
    """Replicas of one folder agree on the etag though inodes differ: the same failover works.

    Each server has its own copy, same bytes and same mtime but another
    inode, as two hosts see one NFS share (or rsync -t copies).
    """
    copies = [tmp_path / "host-a", tmp_path / "host-b"]
    for folder in copies:
        folder.mkdir()
        (folder / "big.bin").write_bytes(content())
        os.utime(folder / "big.bin", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    assert (copies[0] / "big.bin").stat().st_ino != (copies[1] / "big.bin").stat().st_ino
    first = server_process(folder=copies[0])
    second = server_process(folder=copies[1])
    urls = [first.start(), second.start()]
    await download_killing_first(first, urls, tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == content()


async def test_replaced_between_replicas_is_refused(server_process: Any, tmp_path: Path) -> None:
    """If the file changes while the client moves to the other replica, the resume is file_changed."""
    from bridge.errors import FileChangedError

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "big.bin").write_bytes(content())
    first = server_process(folder=shared)
    second = server_process(folder=shared)
    urls = [first.start(), second.start()]
    killed = []

    def progress(done: int, total: int | None) -> None:
        if not killed and done >= SIZE // 4:
            killed.append(done)
            first.kill()
            (shared / "big.bin").write_bytes(content()[::-1])  # same size, other bytes, new mtime

    async with connect(urls) as session:
        with pytest.raises(FileChangedError):
            await session.download("big.bin", tmp_path / "big.bin", progress=progress, page_size=PAGE, window=4)
    assert (tmp_path / "big.bin.part").exists()  # kept for the caller to decide


async def test_connect_skips_a_replica_that_is_down(root: Path, server_process: Any) -> None:
    """connect([down, up]) connects to the one that answers; all down is one clear error."""
    from bridge.errors import ConnectionClosedError

    (root / "a.txt").write_bytes(b"a")
    up = server_process().start()
    down = "ws://127.0.0.1:9/ws"  # discard port: nothing listens
    async with connect([down, up]) as session:
        assert session.url == up
        assert await session.get_all_pages("a.txt") == b"a"
    with pytest.raises(ConnectionClosedError, match="no replica answers"):
        await connect([down, "ws://127.0.0.1:7/ws"])


def test_cli_get_takes_replicas(root: Path, server_process: Any, tmp_path: Path) -> None:
    """`pagebridge get DOWN,UP path` downloads from the replica that answers."""
    (root / "a.bin").write_bytes(content(100_000))
    up = server_process().start()
    out = tmp_path / "a.bin"
    done = subprocess.run([sys.executable, "-m", "bridge", "get", f"ws://127.0.0.1:9/ws,{up}", "a.bin",
                           "-o", str(out), "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == content(100_000)


# ------------------------------------------------------------------ --workers


needs_reuseport = pytest.mark.skipif(not reuse_port_supported(), reason="--workers needs Linux SO_REUSEPORT")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def worker_pids(supervisor: ServerProcess) -> list[int]:
    assert supervisor.proc is not None
    return [p.pid for p in psutil.Process(supervisor.proc.pid).children()]


@needs_reuseport
async def test_two_workers_share_one_port(root: Path, server_process: Any, tmp_path: Path) -> None:
    """Both workers answer on the one port; /metrics sums them; SIGTERM stops the supervisor and all."""
    (root / "a.bin").write_bytes(content(1_000_000))
    supervisor = server_process("--workers", "2")
    url = supervisor.start()
    http = url.replace("ws://", "http://").removesuffix("ws")
    workers = worker_pids(supervisor)
    assert len(workers) == 2
    seen: set[int] = set()
    for _ in range(200):  # the kernel spreads connections by a hash of their source port
        status, body = await asyncio.to_thread(http_get, http + "healthz")
        assert status == 200
        seen.add(json.loads(body)["worker"])
        if len(seen) == 2:
            break
    assert seen == {0, 1}
    # Downloads over many connections, then one scrape shows the total of both workers.
    for _ in range(8):
        async with connect(url) as session:
            assert await session.get_all_pages("a.bin") == content(1_000_000)
    status, body = await asyncio.to_thread(http_get, http + "metrics")
    assert status == 200
    text = body.decode()
    assert 'pagebridge_bytes_sent_total{kind="file"} 8e+06' in text or \
        'pagebridge_bytes_sent_total{kind="file"} 8000000.0' in text
    assert 'pagebridge_streams_opened_total{kind="file"} 8.0' in text
    assert supervisor.stop() == 0
    for pid in workers:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@needs_reuseport
def test_killing_the_supervisor_stops_the_workers(root: Path, server_process: Any) -> None:
    """SIGKILL to the supervisor: the workers get their parent-death signal and exit."""
    supervisor = server_process("--workers", "2")
    supervisor.start()
    workers = [psutil.Process(pid) for pid in worker_pids(supervisor)]
    supervisor.kill()
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive


@needs_reuseport
async def test_push_source_runs_once_for_all_workers(root: Path, server_process: Any, tmp_path: Path) -> None:
    """--source with --workers 2: the command starts once, every collector of every worker gets its output."""
    starts = tmp_path / "starts"
    script = tmp_path / "count.sh"
    script.write_text(f'echo started >> {starts}\ni=0\n'
                      'while [ $i -lt 100000 ]; do i=$((i+1)); echo "line $i"; sleep 0.002; done\n')
    supervisor = server_process("--workers", "2", "--source", f"numbers=sh {script}")
    url = supervisor.start()
    # Open the source on several connections (spread over both workers), at once.
    async def read_some() -> bytes:
        from bridge.aio.client import Page

        got = bytearray()
        async with connect(url) as session:
            async with session.pages("numbers") as stream:
                async for page in stream:
                    if isinstance(page, Page):
                        got += page.data
                    if got.count(b"\n") >= 10:
                        break
        return bytes(got)

    outputs = await asyncio.gather(*(read_some() for _ in range(6)))
    for out in outputs:  # a collector joins mid-stream, so its first line may be cut
        lines = out.split(b"\n")[1:-1]
        assert len(lines) >= 8 and all(re.fullmatch(rb"line \d+", line) for line in lines)
        numbers = [int(line.split()[1]) for line in lines]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # nothing lost between
    assert starts.read_text() == "started\n"  # one command for six collectors on two workers
    status, body = await asyncio.to_thread(
        http_get, url.replace("ws://", "http://").removesuffix("ws") + "metrics")
    assert 'pagebridge_streams_opened_total{kind="source"} 6.0' in body.decode()


def test_workers_report_a_failed_start(server_process: Any, tmp_path: Path) -> None:
    """A root that cannot be served: the supervisor exits non-zero with the worker's reason."""
    done = subprocess.run([sys.executable, "-m", "bridge", "serve", str(tmp_path / "missing"), "--port", "0",
                           "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "is not a directory" in done.stderr

