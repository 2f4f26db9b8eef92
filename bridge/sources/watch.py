"""One file-system watcher per folder, shared by every follower in it.

A follower (:class:`~bridge.sources.follow.FollowPager`) asks
:func:`watch_file` for a :class:`Subscription` to the file it follows.  The
registry of the running event loop keeps one ``watchfiles.awatch`` per
watched folder (inotify underneath: one inotify instance, one worker
thread and the notify crate's own thread per folder), counts its
subscriptions, and stops it when the last one is closed.  Each batch of
changes wakes only the subscriptions whose file appears in it, so a busy
log folder does not wake the followers of its quiet files.

So 64 followers of one file, or of 64 files in one folder, cost one
watcher; a follower costs its own open file and a set entry.  When the
watcher cannot run (no inotify, the folder went away) a subscription says
so (:attr:`Subscription.active` is False) and its follower polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from pathlib import Path

log = logging.getLogger("bridge.sources.watch")

#: Grouping of changes (ms) and how often the watcher looks for them (ms):
#: what the follow-latency benchmark was measured with (p50 ~3 ms).
DEBOUNCE_MS = 20
STEP_MS = 1


#: A new watcher installs its inotify watch a moment after it is created
#: (in its own thread): changes made meanwhile are not reported, so its
#: followers keep polling quickly for this long.
SETTLE_SECONDS = 1.0


class Subscription:
    """One follower's interest in one file: an event set when the file may have changed."""

    def __init__(self, folder: FolderWatch, path: Path) -> None:
        self.folder = folder
        self.path = path
        self.changed = asyncio.Event()
        self.closed = False

    @property
    def active(self) -> bool:
        """True while the folder's watcher runs (else the follower must poll)."""
        return not self.closed and self.folder.alive

    @property
    def settled(self) -> bool:
        """True once the watcher has surely been installed: its silence then means no change."""
        return self.active and time.monotonic() - self.folder.started > SETTLE_SECONDS

    def close(self) -> None:
        """Drop this interest (idempotent); the folder's watcher stops with its last one."""
        if not self.closed:
            self.closed = True
            self.folder.unsubscribe(self)


class FolderWatch:
    """The watcher of one folder and the subscriptions it fans out to."""

    def __init__(self, registry: WatchRegistry, folder: Path) -> None:
        self.registry = registry
        self.folder = folder
        self.by_path: dict[str, set[Subscription]] = {}
        self.count = 0
        self.alive = True
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watch {folder.name}")

    def subscribe(self, path: Path) -> Subscription:
        subscription = Subscription(self, path)
        self.by_path.setdefault(str(path), set()).add(subscription)
        self.count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        key = str(subscription.path)
        subs = self.by_path.get(key)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self.by_path[key]
        self.count -= 1
        if self.count == 0:
            self.stop()

    def stop(self) -> None:
        self.alive = False
        self.registry.forget(self)
        self._stop.set()  # the watcher notices within STEP_MS and its thread returns
        if self._task is not asyncio.current_task():
            self._task.cancel()

    async def _run(self) -> None:
        try:
            import watchfiles

            async for changes in watchfiles.awatch(self.folder, stop_event=self._stop,
                                                   debounce=DEBOUNCE_MS, step=STEP_MS,
                                                   recursive=False, ignore_permission_denied=True,
                                                   watch_filter=None):
                for _, changed in changes:
                    for subscription in self.by_path.get(changed, ()):
                        subscription.changed.set()
        except Exception as exc:  # no inotify, folder removed...: followers poll instead
            log.info("watching %s stopped: %s", self.folder.name[:100], exc)
        finally:
            if self.alive:
                self.stop()
            for subs in list(self.by_path.values()):
                for subscription in subs:
                    subscription.changed.set()  # wake them: they will see inactive and poll


class WatchRegistry:
    """The folders watched on one event loop."""

    def __init__(self) -> None:
        self.folders: dict[Path, FolderWatch] = {}

    def watch(self, path: Path) -> Subscription:
        folder = self.folders.get(path.parent)
        if folder is None or not folder.alive:
            folder = self.folders[path.parent] = FolderWatch(self, path.parent)
        return folder.subscribe(path)

    def forget(self, folder: FolderWatch) -> None:
        if self.folders.get(folder.folder) is folder:
            del self.folders[folder.folder]


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WatchRegistry] = \
    weakref.WeakKeyDictionary()


def registry() -> WatchRegistry:
    """The registry of the running event loop."""
    loop = asyncio.get_running_loop()
    found = _registries.get(loop)
    if found is None:
        found = _registries[loop] = WatchRegistry()
    return found


def watch_file(path: Path) -> Subscription:
    """Subscribe to changes of ``path`` (a real path); close the subscription when done."""
    return registry().watch(path)


async def wait_changed(subscription: Subscription | None, timeout: float) -> None:
    """Wait until the subscription's file may have changed, or ``timeout`` passes."""
    if subscription is None:
        await asyncio.sleep(timeout)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscription.changed.wait(), timeout)


__all__ = ["FolderWatch", "Subscription", "WatchRegistry", "registry", "wait_changed", "watch_file"]
