"""Followers share one watcher per folder: 64 idle followers cost no thread, no inotify and no CPU each."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import REPO

FOLLOWERS = 64

#: Opens FOLLOWERS follow streams of app.log on one connection, reads the
#: current content on each, says "ready", then waits until every follower
#: has received the line named by its third argument and says "got N".
CLIENT = """
import asyncio, sys
from bridge.aio.client import connect
from bridge.core import messages as m

async def follow(session, ready, line):
    got = bytearray()
    async with session.pages("app.log", follow=True) as stream:
        async for item in stream:
            if isinstance(item, m.Page):
                got += item.data
                if got == b"start\\n":
                    ready.release()
                if got.endswith(line):
                    return True

async def main(url, count):
    ready = asyncio.Semaphore(0)
    async with connect(url) as session:
        line = sys.argv[3].encode() + b"\\n"
        tasks = [asyncio.create_task(follow(session, ready, line)) for _ in range(count)]
        for _ in range(count):
            await ready.acquire()
        print("ready", flush=True)
        done = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        print("got", sum(done), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_sixty_four_idle_followers_share_one_watcher(root: Path, server_process) -> None:
    """64 followers of one file: threads and fds stay near the baseline, idle CPU near zero, all get the line."""
    log = root / "app.log"
    log.write_bytes(b"start\n")
    server = server_process()
    url = server.start()
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    # Warm up: one follower, so worker threads and lazy imports exist in the baseline.
    warm = subprocess.run([sys.executable, "-c", CLIENT, url, "1", "start"], capture_output=True,
                          cwd=REPO, timeout=60)
    assert warm.stdout == b"ready\ngot 1\n", warm.stderr
    time.sleep(0.5)
    threads, fds = proc.num_threads(), proc.num_fds()
    client = subprocess.Popen([sys.executable, "-c", CLIENT, url, str(FOLLOWERS), "appended"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == b"ready\n"
        time.sleep(0.5)
        threads_during, fds_during = proc.num_threads(), proc.num_fds()
        before = proc.cpu_times()
        started = time.monotonic()
        time.sleep(3)
        after = proc.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / (time.monotonic() - started)
        with open(log, "ab") as f:
            f.write(b"appended\n")
        assert client.stdout.readline() == f"got {FOLLOWERS}\n".encode()
    finally:
        client.kill()
        client.wait(10)
    print(f"\n{FOLLOWERS} idle followers: +{threads_during - threads} threads, +{fds_during - fds} fds, "
          f"server CPU {cpu:.1%}")
    # One watcher (an inotify fd, two threads), a socket, one fd per followed file; a
    # few worker threads besides.  Before: one watcher each (+64 threads, +128 fds, ~40 % CPU).
    assert threads_during - threads <= 8
    assert fds_during - fds <= FOLLOWERS + 8
    assert cpu < 0.10


async def test_one_watcher_per_folder_wakes_only_the_changed_file_s_followers(tmp_path: Path) -> None:
    """Subscriptions to two files of one folder share one watcher; a write wakes its file's only; the last close stops it."""
    import asyncio

    from bridge.sources.watch import registry, watch_file

    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"")
    b.write_bytes(b"")
    subs = [watch_file(a), watch_file(a), watch_file(b)]
    assert list(registry().folders) == [tmp_path]
    await asyncio.sleep(0.3)  # the watcher is installed
    with open(a, "ab") as f:
        f.write(b"x\n")
    await asyncio.wait_for(asyncio.gather(subs[0].changed.wait(), subs[1].changed.wait()), 5)
    await asyncio.sleep(0.1)
    assert not subs[2].changed.is_set()
    for sub in subs:
        assert sub.active
        sub.close()
    assert registry().folders == {}
    assert not subs[0].active
