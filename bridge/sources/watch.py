"""One file-system watch per folder, shared by every follower in it.

A follower (:class:`~bridge.sources.follow.FollowPager`) asks
:func:`watch_file` for a :class:`Subscription` to the file it follows.  The
registry of the running event loop keeps one watch per watched folder,
counts its subscriptions, and removes it when the last one is closed.  Each
change wakes only the subscriptions of the file it names, so a busy log
folder does not wake the followers of its quiet files.

How a folder is watched (``PAGEBRIDGE_WATCHER``, read when a watch starts):

* ``auto`` (the default): on Linux, inotify read by the event loop itself
  (:mod:`bridge.sources.inotify`: one inotify descriptor per event loop, one
  kernel watch per folder, no thread, no polling: an idle folder costs no
  CPU at all).  Where inotify cannot be started (another system, or
  ``inotify_init1`` failing: the per-user instance limit, the descriptor
  limit), ``watchfiles``;
* ``watchfiles``: one ``watchfiles.awatch`` per folder (two threads, and it
  looks for changes every :data:`STEP_MS`, about 3 % of a core per folder
  while idle);
* ``poll``: no watch; followers poll (as they do whenever a watch fails).

So 64 followers of one file, or of 64 files in one folder, cost one watch;
a follower costs its own open file and a set entry.  When a watch cannot
run (no inotify, the folder went away, the watch limit) a subscription says
so (:attr:`Subscription.active` is False) and its follower polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from pathlib import Path

from .inotify import InotifyHub

log = logging.getLogger("bridge.sources.watch")

#: The environment variable that chooses how folders are watched (see above).
WATCHER_ENV = "PAGEBRIDGE_WATCHER"
WATCHERS = ("auto", "watchfiles", "poll")

#: watchfiles: grouping of changes (ms) and how often it looks for them (ms):
#: what the follow-latency benchmark was measured with (p50 ~3 ms).
DEBOUNCE_MS = 20
STEP_MS = 1

#: watchfiles installs its inotify watch a moment after it is created (in
#: its own thread): changes made meanwhile are not reported, so its
#: followers keep polling quickly for this long.  (inotify here is
#: installed before :func:`watch_file` returns: settled at once.)
SETTLE_SECONDS = 1.0


def watcher_kind() -> str:
    """The watcher asked for by ``PAGEBRIDGE_WATCHER`` (``auto`` when unset)."""
    kind = os.environ.get(WATCHER_ENV, "auto").strip().lower() or "auto"
    if kind not in WATCHERS:
        raise ValueError(f"{WATCHER_ENV}={kind!r}: expected one of {', '.join(WATCHERS)}")
    return kind


class Subscription:
    """One follower's interest in one file: an event set when the file may have changed."""

    def __init__(self, folder: FolderWatch, path: Path) -> None:
        self.folder = folder
        self.path = path
        self.changed = asyncio.Event()
        self.closed = False

    @property
    def active(self) -> bool:
        """True while the folder's watch runs (else the follower must poll)."""
        return not self.closed and self.folder.alive

    @property
    def settled(self) -> bool:
        """True once the watch has surely been installed: its silence then means no change."""
        return self.active and time.monotonic() >= self.folder.settled_at

    def close(self) -> None:
        """Drop this interest (idempotent); the folder's watch goes with its last one."""
        if not self.closed:
            self.closed = True
            self.folder.unsubscribe(self)


class FolderWatch:
    """The watch of one folder and the subscriptions it fans out to.

    This base class watches nothing (``alive`` is False: its followers
    poll); :class:`InotifyWatch` and :class:`WatchfilesWatch` watch.
    """

    kind = "none"

    def __init__(self, registry: WatchRegistry, folder: Path) -> None:
        self.registry = registry
        self.folder = folder
        self.by_name: dict[str, set[Subscription]] = {}
        self.count = 0
        self.alive = False
        self.settled_at = time.monotonic()

    def subscribe(self, path: Path) -> Subscription:
        subscription = Subscription(self, path)
        self.by_name.setdefault(path.name, set()).add(subscription)
        self.count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        name = subscription.path.name
        subs = self.by_name.get(name)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self.by_name[name]
        self.count -= 1
        if self.count == 0:
            self.stop()

    def changed(self, name: str) -> None:
        """The entry ``name`` of the folder changed: wake its subscriptions."""
        for subscription in self.by_name.get(name, ()):
            subscription.changed.set()

    def changed_all(self) -> None:
        """Changes may have been missed: wake every subscription (they look at their files)."""
        for subs in self.by_name.values():
            for subscription in subs:
                subscription.changed.set()

    def lost(self, reason: str) -> None:
        """The watch stopped working: its followers poll from now on."""
        if self.alive:
            log.info("watching %s stopped: %s", self.folder.name[:100], reason)
            self.stop()
        self.changed_all()  # wake them: they will see inactive and poll

    def stop(self) -> None:
        was_alive, self.alive = self.alive, False
        self.registry.forget(self)
        if was_alive:
            self._release()

    def _release(self) -> None:
        """Give the watch back (once, when it stops)."""


class InotifyWatch(FolderWatch):
    """A kernel watch on the event loop's inotify instance."""

    kind = "inotify"

    def __init__(self, registry: WatchRegistry, folder: Path, hub: InotifyHub) -> None:
        super().__init__(registry, folder)
        self.hub = hub
        self.wd = hub.add(folder, self)  # OSError: not watched (the caller falls back)
        self.alive = True

    def _release(self) -> None:
        self.hub.remove(self.wd, self)
        self.registry.release_hub(self.hub)


class WatchfilesWatch(FolderWatch):
    """A ``watchfiles.awatch`` task (its own threads, looking every STEP_MS)."""

    kind = "watchfiles"

    def __init__(self, registry: WatchRegistry, folder: Path) -> None:
        super().__init__(registry, folder)
        self.alive = True
        self.settled_at += SETTLE_SECONDS
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watch {folder.name}")

    def _release(self) -> None:
        self._stop.set()  # the watcher notices within STEP_MS and its thread returns
        if self._task is not asyncio.current_task():
            self._task.cancel()

    async def _run(self) -> None:
        reason = "it ended"
        try:
            import watchfiles

            async for changes in watchfiles.awatch(self.folder, stop_event=self._stop,
                                                   debounce=DEBOUNCE_MS, step=STEP_MS,
                                                   recursive=False, ignore_permission_denied=True,
                                                   watch_filter=None):
                for _, changed in changes:
                    self.changed(os.path.basename(changed))
        except Exception as exc:  # no inotify, folder removed...: followers poll instead
            reason = str(exc)
        finally:
            self.lost(reason)


class WatchRegistry:
    """The folders watched on one event loop (and its inotify instance while any is)."""

    def __init__(self) -> None:
        self.folders: dict[Path, FolderWatch] = {}
        self.hub: InotifyHub | None = None

    def watch(self, path: Path) -> Subscription:
        folder = self.folders.get(path.parent)
        if folder is None or not folder.alive:
            folder = self._start(path.parent)
            if folder.alive:
                self.folders[path.parent] = folder
        return folder.subscribe(path)

    def _start(self, folder: Path) -> FolderWatch:
        kind = watcher_kind()
        if kind == "poll":
            return FolderWatch(self, folder)
        if kind == "auto":
            if self.hub is None:
                try:
                    self.hub = InotifyHub()
                except OSError as exc:  # tried again for the next folder watched
                    log.info("inotify is unavailable (%s): watching with watchfiles", exc)
            if self.hub is not None:
                try:
                    return InotifyWatch(self, folder, self.hub)
                except OSError as exc:  # gone, not a folder, the watch limit: poll
                    log.info("cannot watch %s: %s", folder.name[:100], exc)
                    self.release_hub(self.hub)
                    return FolderWatch(self, folder)
        return WatchfilesWatch(self, folder)

    def forget(self, folder: FolderWatch) -> None:
        if self.folders.get(folder.folder) is folder:
            del self.folders[folder.folder]

    def release_hub(self, hub: InotifyHub) -> None:
        """Close the inotify instance once it watches nothing (a new one opens when needed)."""
        if hub is self.hub and not hub.targets:
            hub.close()
            self.hub = None


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


__all__ = ["WATCHER_ENV", "FolderWatch", "InotifyWatch", "Subscription", "WatchRegistry",
           "WatchfilesWatch", "registry", "wait_changed", "watch_file", "watcher_kind"]
