"""Followers share one watch per folder, read by the event loop: idle followers cost no thread and no CPU."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bridge.sources.watch import registry, watch_file
from tests.conftest import REPO

FOLLOWERS = 64

#: Opens FOLLOWERS follow streams on one connection (of app.log, or with a
#: fourth argument "folders" of d0/app.log, d1/app.log...), reads the
#: current content on each, says "ready", then waits until every follower
#: has received the line named by its third argument and says "got N".
CLIENT = """
import asyncio, sys
from bridge.aio.client import connect
from bridge.core import messages as m

async def follow(session, ready, line, name):
    got = bytearray()
    async with session.pages(name, follow=True) as stream:
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
        folders = sys.argv[4:] == ["folders"]
        names = [f"d{i}/app.log" if folders else "app.log" for i in range(count)]
        tasks = [asyncio.create_task(follow(session, ready, line, name)) for name in names]
        for _ in range(count):
            await ready.acquire()
        print("ready", flush=True)
        done = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        print("got", sum(done), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def idle_cost(root: Path, server_process, layout: str) -> tuple[int, int, float]:
    """Threads and fds that FOLLOWERS idle followers add to a server process, and its CPU share over 3 s.

    ``layout`` "file": all follow app.log; "folders": each follows the
    app.log of its own folder.  Then a line appended to every file must
    reach every follower.
    """
    logs = [root / "app.log"] if layout == "file" else [root / f"d{i}" / "app.log" for i in range(FOLLOWERS)]
    for log in logs:
        log.parent.mkdir(exist_ok=True)
        log.write_bytes(b"start\n")
    server = server_process()
    url = server.start()
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    # Warm up: one follower, so worker threads and lazy imports exist in the baseline.
    warm = subprocess.run([sys.executable, "-c", CLIENT, url, "1", "start", layout], capture_output=True,
                          cwd=REPO, timeout=60)
    assert warm.stdout == b"ready\ngot 1\n", warm.stderr
    time.sleep(0.5)
    threads, fds = proc.num_threads(), proc.num_fds()
    client = subprocess.Popen([sys.executable, "-c", CLIENT, url, str(FOLLOWERS), "appended", layout],
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
        for log in logs:
            with open(log, "ab") as f:
                f.write(b"appended\n")
        assert client.stdout.readline() == f"got {FOLLOWERS}\n".encode()
    finally:
        client.kill()
        client.wait(10)
    print(f"\n{FOLLOWERS} idle followers ({layout}): +{threads_during - threads} threads, "
          f"+{fds_during - fds} fds, server CPU {cpu:.1%}")
    return threads_during - threads, fds_during - fds, cpu


def test_sixty_four_idle_followers_share_one_watcher(root: Path, server_process) -> None:
    """64 followers of one file: threads and fds stay near the baseline, idle CPU near zero, all get the line."""
    threads, fds, cpu = idle_cost(root, server_process, "file")
    # A socket, one fd per followed file, a few worker threads (the followers'
    # looks); the watch is on the loop's inotify descriptor.  With one
    # watchfiles watcher per follower (two rounds ago): +108 threads, +257
    # fds, 96 % CPU; with one shared watchfiles watcher: +6 threads, 3-5 %.
    assert threads <= 8
    assert fds <= FOLLOWERS + 8
    assert cpu < 0.05


def test_idle_followers_in_sixty_four_folders_cost_no_polling(root: Path, server_process) -> None:
    """64 followers in 64 folders: no thread and no descriptor per folder, idle CPU near zero (no watcher polls)."""
    threads, fds, cpu = idle_cost(root, server_process, "folders")
    # What is left is each idle follower's look at its file every IDLE_POLL
    # (2 s): under 1 % here.  watchfiles (one awatch per folder, each looking
    # every millisecond): +108 threads, +256 fds and 30-45 % CPU on this
    # 2-core machine (bench/README.md, "Idle followers").
    assert threads <= 8
    assert fds <= FOLLOWERS + 8
    assert cpu < 0.05


@pytest.mark.parametrize("kind", ["auto", "watchfiles"])
async def test_one_watcher_per_folder_wakes_only_the_changed_file_s_followers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Subscriptions to two files of one folder share one watch; a write wakes its file's only; the last close removes it."""
    monkeypatch.setenv("PAGEBRIDGE_WATCHER", kind)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"")
    b.write_bytes(b"")
    subs = [watch_file(a), watch_file(a), watch_file(b)]
    assert list(registry().folders) == [tmp_path]
    assert registry().folders[tmp_path].kind == ("inotify" if kind == "auto" else "watchfiles")
    if kind == "watchfiles":
        await asyncio.sleep(0.3)  # its watcher is installed by its thread, a moment later
    with open(a, "ab") as f:
        f.write(b"x\n")
    await asyncio.wait_for(asyncio.gather(subs[0].changed.wait(), subs[1].changed.wait()), 5)
    await asyncio.sleep(0.1)
    assert not subs[2].changed.is_set()
    for sub in subs:
        assert sub.active
        sub.close()
    assert registry().folders == {}
    assert registry().hub is None  # the inotify descriptor is closed with the last watch
    assert not subs[0].active


async def test_folders_share_one_inotify_descriptor_and_it_closes_with_the_last(tmp_path: Path) -> None:
    """Two folders: one inotify instance, a kernel watch each, settled at once; closed when both are closed."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a.log").write_bytes(b"")
    (two / "a.log").write_bytes(b"")
    sub_one, sub_two = watch_file(one / "a.log"), watch_file(two / "a.log")
    hub = registry().hub
    assert hub is not None and len(hub.targets) == 2
    assert os.readlink(f"/proc/self/fd/{hub.fd}") == "anon_inode:inotify"
    assert sub_one.settled and sub_two.settled  # installed before watch_file returned
    with open(two / "a.log", "ab") as f:
        f.write(b"x\n")
    await asyncio.wait_for(sub_two.changed.wait(), 5)
    assert not sub_one.changed.is_set()  # same name, other folder
    sub_one.close()
    assert registry().hub is hub and len(hub.targets) == 1
    sub_two.close()
    assert registry().hub is None and hub.closed
    with pytest.raises(OSError):
        os.fstat(hub.fd)


async def test_queue_overflow_wakes_every_subscription_of_the_folder(tmp_path: Path) -> None:
    """Events lost by the kernel (IN_Q_OVERFLOW) wake every subscription, which then looks at its file."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        pytest.skip(f"max_queued_events is {limit}: too many files to overflow it quickly")
    quiet = tmp_path / "quiet.log"
    quiet.write_bytes(b"")
    sub = watch_file(quiet)
    try:
        # Without yielding to the loop: the kernel queues an event per
        # creation and per removal until its queue is full.
        churn = tmp_path / "churn"
        for i in range(limit // 2 + 100):
            (churn.with_name(f"c{i}")).touch()
            os.unlink(churn.with_name(f"c{i}"))
        assert not sub.changed.is_set()
        await asyncio.wait_for(sub.changed.wait(), 10)  # woken though quiet.log never changed
        assert sub.active
    finally:
        sub.close()


async def test_a_removed_folder_turns_its_followers_to_polling(tmp_path: Path) -> None:
    """The watched folder removed: its subscriptions are woken and inactive (their followers poll)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.log").write_bytes(b"")
    sub = watch_file(folder / "a.log")
    (folder / "a.log").unlink()
    await asyncio.wait_for(sub.changed.wait(), 5)
    sub.changed.clear()
    folder.rmdir()
    await asyncio.wait_for(sub.changed.wait(), 5)
    assert not sub.active
    assert registry().folders == {}
    sub.close()
    assert registry().hub is None


#: In a process whose descriptors are all taken, inotify cannot start (as
#: when the per-user instance limit is reached): a follower opened before
#: still follows its file, by polling.
NO_DESCRIPTORS = """
import asyncio, os, resource, sys
from pathlib import Path
from bridge.sources.follow import FollowPager
from bridge.sources.watch import registry

async def main(path):
    pager = FollowPager(path)
    await pager.start()
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    taken = []
    try:
        while True:
            taken.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    assert await pager.next_page(1024) == b"start\\n"  # subscribes: inotify cannot start
    waiting = asyncio.ensure_future(pager.next_page(1024))
    await asyncio.sleep(0.5)
    watch = pager._watch
    print("hub", registry().hub, "kind", watch.folder.kind, "active", watch.active, flush=True)
    os.close(taken.pop())  # one descriptor for the writer
    with open(path, "ab", buffering=0) as f:
        f.write(b"polled\\n")
    print(await asyncio.wait_for(waiting, 10), flush=True)
    pager.close()

asyncio.run(main(sys.argv[1]))
"""


def test_followers_poll_when_inotify_cannot_start(tmp_path: Path) -> None:
    """No descriptor left for inotify (nor for watchfiles): the follower falls back to polling and still follows."""
    log = tmp_path / "app.log"
    log.write_bytes(b"start\n")
    result = subprocess.run([sys.executable, "-c", NO_DESCRIPTORS, str(log)], capture_output=True,
                            cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    assert result.stdout.decode().splitlines() == ["hub None kind watchfiles active False", "b'polled\\n'"], \
        result.stderr.decode()
