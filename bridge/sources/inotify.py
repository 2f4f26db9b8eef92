"""Linux inotify read by the event loop itself: no thread, no polling.

One :class:`InotifyHub` per event loop holds one inotify instance (one file
descriptor, registered with ``loop.add_reader``) and one kernel watch per
watched folder.  The loop wakes only when the kernel has queued events, so
a folder where nothing happens costs nothing at all.  The binding is
``inotify_simple`` (a ctypes wrapper of ``inotify_init1``,
``inotify_add_watch``, ``inotify_rm_watch`` and the event layout); the
reads are ours, bounded by :data:`READ_SIZE`.

Why one instance for all folders rather than one per folder: instances are
limited per user (``fs.inotify.max_user_instances``, 128 by default, shared
with every other program of that user) while watches are plentiful
(``fs.inotify.max_user_watches``, 8192 or more), and one descriptor in all
fits the server's descriptor headroom however many folders are followed.

Each event is handed to the targets (the folder watches of
:mod:`bridge.sources.watch`) of its watch descriptor:

* a change of an entry (written, truncated, created, deleted, renamed from
  or to, attributes, closed after writing): ``target.changed(name)``;
* the queue overflowed (``IN_Q_OVERFLOW``, events were lost): every target
  of every folder gets ``target.changed_all()``, and their followers look
  at their files again (an ``fstat`` each);
* the folder itself deleted, moved or unmounted, or its watch dropped by
  the kernel (``IN_IGNORED``): ``target.lost(reason)``; its followers then
  poll and subscribe again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

#: What a follower cares about in its folder: the events ``watchfiles`` (the
#: notify crate) asks for, so followers see exactly what they saw before.
#: IN_ONLYDIR: a watched path that is not a folder fails at once.
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
        | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#: Events that end a folder's watch.
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED

#: Bytes read per wake-up of the loop: a few hundred events (16 bytes plus
#: the name each).  More waiting in the kernel are read on the next turn of
#: the loop (the descriptor stays readable), so a storm of events cannot
#: hold the loop, and the kernel's queue (``max_queued_events``) bounds what
#: waits; past it the kernel says IN_Q_OVERFLOW.
READ_SIZE = 64 * 1024


class Target(Protocol):
    """What the hub tells a folder watch."""

    def changed(self, name: str) -> None: ...
    def changed_all(self) -> None: ...
    def lost(self, reason: str) -> None: ...


class InotifyHub:
    """One inotify instance on the running event loop, shared by every watched folder.

    Raises:
        OSError: inotify is unavailable (not Linux, no binding, or
            ``inotify_init1`` failed: the per-user instance limit, the
            process's descriptor limit).
    """

    def __init__(self) -> None:
        try:
            import inotify_simple
        except ImportError as exc:  # not Linux: the dependency is Linux-only
            raise OSError(f"no inotify binding: {exc}") from exc
        self._parse = inotify_simple.parse_events
        self._ino: Any = inotify_simple.INotify(nonblocking=True)  # close-on-exec by default
        self.fd: int = self._ino.fd
        self.targets: dict[int, set[Target]] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)
        self.closed = False

    def add(self, folder: Path, target: Target) -> int:
        """Watch ``folder`` for ``target``; returns the watch descriptor.

        Raises:
            OSError: the folder cannot be watched (gone, not a folder, no
                permission, or the per-user watch limit reached: ENOSPC).
        """
        wd: int = self._ino.add_watch(folder, MASK)
        # The same folder reached by two paths (a bind mount) is one inode,
        # hence one watch descriptor: it stays until its last target leaves.
        self.targets.setdefault(wd, set()).add(target)
        return wd

    def remove(self, wd: int, target: Target) -> None:
        """``target`` no longer needs ``wd``; the kernel watch goes with its last target."""
        targets = self.targets.get(wd)
        if targets is None:
            return  # already dropped by the kernel (IN_IGNORED)
        targets.discard(target)
        if not targets:
            del self.targets[wd]
            with contextlib.suppress(OSError):  # EINVAL: the kernel dropped it meanwhile
                self._ino.rm_watch(wd)

    def close(self) -> None:
        """Stop reading and close the descriptor (idempotent)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, ValueError):  # the loop is already closed
            self._loop.remove_reader(self.fd)
        self._ino.close()

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # should not happen; followers poll rather than spin here
            self._fail(f"reading inotify events failed: {exc}")
            return
        for wd, mask, _, name in self._parse(data):
            if mask & IN_Q_OVERFLOW:
                for group in list(self.targets.values()):
                    for target in list(group):
                        target.changed_all()
                continue
            targets = self.targets.get(wd)
            if not targets:
                continue  # a watch removed a moment ago
            if mask & GONE:
                if mask & IN_IGNORED:
                    del self.targets[wd]  # the kernel has dropped this watch already
                for target in list(targets):
                    target.lost(_gone_reason(mask))
            elif name:
                for target in targets:
                    target.changed(name)

    def _fail(self, reason: str) -> None:
        targets = [target for group in self.targets.values() for target in group]
        self.targets.clear()
        self.close()
        for target in targets:
            target.lost(reason)


def _gone_reason(mask: int) -> str:
    if mask & IN_DELETE_SELF:
        return "the folder was deleted"
    if mask & IN_MOVE_SELF:
        return "the folder was moved"
    if mask & IN_UNMOUNT:
        return "the folder's file system was unmounted"
    return "the kernel dropped the watch"


__all__ = ["MASK", "READ_SIZE", "InotifyHub", "Target"]
