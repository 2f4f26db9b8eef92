"""Following a growing file, the way ``tail -F`` does.

:class:`FollowPager` pages a file to its end and then whatever is appended,
woken by file-system events and only when the collector's credit allows: a
follower that stops acknowledging costs an open file handle and an entry in
its folder's shared watcher (:mod:`bridge.sources.watch`), nothing more (the
file is the buffer).  With a watcher, an idle follower also looks at its
file every ``IDLE_POLL`` seconds (a safety net); without one (no inotify),
or while a vanished file may come back, it polls every ``POLL_INTERVAL``.

What can happen to a followed file, and what the collector sees
(docs/protocol.md §7):

* appended bytes: pages;
* renamed away and a new file created at the path (logrotate's default):
  the rest of the old file first, then a ``rotated`` event, then the new file
  from offset 0;
* truncated in place (copytruncate): a ``truncated`` event with the new
  offset and ``lost``, the bytes seen in the file beyond what was paged when
  it was truncated (a lower bound: bytes written and truncated between two
  looks cannot be seen by anyone);
* removed with no new file: a ``deleted`` event; if a file appears at the
  path later, a ``rotated`` event and its content from offset 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ErrorCode, FileChangedError, StreamError
from .base import Pager, SourceEvent, SourceInfo, cut_at_line
from .files import file_etag
from .paths import open_beneath, open_file
from .watch import Subscription, wait_changed, watch_file

#: How long a renamed-away file's path may stay empty before we call it deleted.
ROTATE_GRACE = 1.0
#: Polling period when no watcher runs (no inotify), and while a file that
#: vanished may be coming back (rotation).
POLL_INTERVAL = 0.25
#: With a watcher, an idle follower still looks at its file this often: a
#: safety net for changes inotify does not report (writes by another host
#: on a network file system), and nearly free (one look per follower).
IDLE_POLL = 2.0
#: How long a follower whose watcher failed polls before trying another one.
WATCH_RETRY = 10.0
#: Text mode at the end of the file: how long to wait for the rest of a line
#: before sending a partial one.
PARTIAL_LINE_WAIT = 0.5


class FollowPager(Pager):
    """Pages a file from ``offset`` and keeps paging what is appended."""

    live = True

    def __init__(self, path: str | os.PathLike[str], offset: int = 0, *, text: bool = False,
                 if_match: str | None = None, name: str | None = None, root: Path | None = None,
                 refuse_links: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # With root: path is a cleaned collector path, always opened beneath root.
        self.path = os.fspath(path)
        self.root = root
        self.refuse_links = refuse_links
        if name is None:
            name = (self.path or "/") if root is not None else os.path.basename(self.path)
        self.name = name
        self.real: Path | None = None  # the real path of the file followed (for the watch)
        self.pos = offset
        self.text = text
        self.if_match = if_match
        self.fd: int | None = None
        self.inode: int | None = None
        self.seen_size = 0  # largest size observed: tells how much a truncation may have cost
        self.deleted = False
        self._watch: Subscription | None = None  # shared watcher of the file's folder
        self._watched_at = 0.0
        self._closed = False
        # close() may run while a look is in its thread: keep the fd valid
        # until it returns; and an open that finishes after close() (the
        # stream was cancelled meanwhile) closes its own descriptor.
        self._fd_lock = threading.Lock()
        self._gone_since: float | None = None

    # ------------------------------------------------------------ opening

    async def start(self) -> SourceInfo:
        return self._checked(await asyncio.to_thread(self._start))

    def open_now(self) -> SourceInfo:
        """:meth:`start`, blocking, for a caller already in a worker thread (a scan)."""
        return self._checked(self._start())

    def _checked(self, st: os.stat_result) -> SourceInfo:
        if self.if_match is not None and self.if_match != file_etag(st):
            self.close()
            raise FileChangedError(f"{self.name} has changed since etag {self.if_match}")
        if self.pos > st.st_size:
            self.close()
            raise StreamError(f"offset {self.pos} is beyond the end of {self.name} "
                              f"({st.st_size} bytes)", ErrorCode.BAD_REQUEST)
        return SourceInfo(size=st.st_size, length=None, mtime=st.st_mtime, etag=file_etag(st))

    def _start(self) -> os.stat_result:
        fd, st, real = open_file(self.path, root=self.root, shown=self.name,
                                 refuse_links=self.refuse_links)
        with self._fd_lock:
            if self._closed:
                os.close(fd)
                raise StreamError(f"{self.name} was closed while it was being opened",
                                  ErrorCode.CANCELLED)
            self._adopt(fd, st, real)
        return st

    def _adopt(self, fd: int, st: os.stat_result, real: Path) -> None:
        """Make ``fd`` the file followed (the caller holds the lock)."""
        self.fd, self.inode, self.real = fd, st.st_ino, real
        self.seen_size = st.st_size

    def _stat_path(self) -> os.stat_result:
        """What the path names now (beneath the root when there is one)."""
        if self.root is not None:
            return open_beneath(self.root, self.path, want="stat").stat
        return os.stat(self.path)

    # ------------------------------------------------------------ paging

    async def next_page(self, size: int) -> bytes | SourceEvent | None:
        waited_for_line = False
        while True:
            self._arm()
            data, event = await asyncio.to_thread(self._read_or_check, size)
            if event is not None:
                return event
            if data:
                if self.text:
                    cut = cut_at_line(data)
                    if cut is data and not data.endswith(b"\n") and len(data) < size and not waited_for_line:
                        # The writer is probably in the middle of a line: give it a moment.
                        waited_for_line = True
                        await self._wait(PARTIAL_LINE_WAIT)
                        continue
                    data = cut
                self.pos += len(data)
                return data
            await self._wait(self._poll_interval())

    def look(self, size: int) -> tuple[bytes, SourceEvent | None]:
        """One look at the file, blocking: up to ``size`` new bytes, or an event, or nothing.

        The caller advances :attr:`pos` by the bytes it takes (``next_page``
        does; a scan does too).
        """
        return self._read_or_check(size)

    async def ready(self) -> None:
        """Return once the next look will find something: bytes beyond our
        position, or a change of the file (truncated, rotated, deleted).

        Nothing is read here, so a follower waiting for its writer holds no
        page and no page budget on the server (docs/security.md, "Budgets").
        """
        while True:
            self._arm()
            if await asyncio.to_thread(self._has_news):
                return
            await self._wait(self._poll_interval())

    def _has_news(self) -> bool:
        with self._fd_lock:
            if self.fd is None:
                raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
            if os.fstat(self.fd).st_size != self.pos:
                return True  # appended, or truncated below our position
            try:
                st_path = self._stat_path()
            except (FileNotFoundError, StreamError):
                return not self.deleted  # gone: a 'deleted' event is due, once
            return st_path.st_ino != self.inode  # rotated

    def _read_or_check(self, size: int) -> tuple[bytes, SourceEvent | None]:
        """One look at the file (runs in a thread): new bytes, or an event, or nothing."""
        with self._fd_lock:
            if self.fd is None:
                raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
            return self._look(size)

    def _look(self, size: int) -> tuple[bytes, SourceEvent | None]:
        assert self.fd is not None
        data = os.pread(self.fd, size, self.pos)
        st_fd = os.fstat(self.fd)
        self.seen_size = max(self.seen_size, st_fd.st_size)
        if data:
            return data, None
        if st_fd.st_size < self.pos:
            # Truncated in place (copytruncate): continue at its new end... of nothing: 0.
            lost = max(0, self.seen_size - self.pos)
            old = self.pos
            self.pos = 0
            self.seen_size = st_fd.st_size
            return b"", SourceEvent("truncated", 0, lost,
                                    f"{self.name} was truncated at offset {old}; {lost} bytes "
                                    "written before the truncation were not paged")
        try:
            st_path = self._stat_path()
        except FileNotFoundError:
            return b"", self._gone()
        except StreamError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
            return b"", self._gone()
        self._gone_since = None
        if st_path.st_ino != self.inode:
            # Rotated.  Bytes may have reached the old file between our read
            # and the look at the path: finish it first, then switch.
            rest = os.pread(self.fd, size, self.pos)
            if rest:
                return rest, None
            fd, st, real = open_file(self.path, root=self.root, shown=self.name,
                                     refuse_links=self.refuse_links)
            os.close(self.fd)
            self._adopt(fd, st, real)
            self.pos = 0
            was_deleted, self.deleted = self.deleted, False
            detail = (f"{self.name} was created again" if was_deleted
                      else f"{self.name} was rotated; following the new file")
            return b"", SourceEvent("rotated", 0, None, detail)
        return b"", None

    def _gone(self) -> SourceEvent | None:
        if self.deleted:
            return None
        if self._gone_since is None:
            self._gone_since = time.monotonic()
            return None
        if time.monotonic() - self._gone_since < ROTATE_GRACE:
            return None  # logrotate renames, then creates: give it a moment
        self.deleted = True
        self._gone_since = None
        return SourceEvent("deleted", self.pos, None,
                           f"{self.name} was deleted; waiting for it to come back")

    def _arm(self) -> None:
        """Before a look: (re)subscribe to the file's folder and forget older wake-ups.

        Clearing *before* the look means a change made during the look
        still wakes the wait that follows it.
        """
        if self.real is None or self._closed:
            return
        watch = self._watch
        now = time.monotonic()
        if watch is not None and (watch.path != self.real
                                  or not watch.active and now - self._watched_at > WATCH_RETRY):
            watch.close()  # rotated to another real path, or the watcher died a while ago
            watch = self._watch = None
        if watch is None:
            watch = self._watch = watch_file(self.real)
            self._watched_at = now
        watch.changed.clear()

    def _poll_interval(self) -> float:
        if self._gone_since is not None or self._watch is None or not self._watch.settled:
            return POLL_INTERVAL
        return IDLE_POLL

    async def _wait(self, timeout: float) -> None:
        """Sleep until the followed file may have changed, or ``timeout`` passes."""
        await wait_changed(self._watch, timeout)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        with self._fd_lock:
            self._closed = True
            if self.fd is not None:
                fd, self.fd = self.fd, None
                with contextlib.suppress(OSError):
                    os.close(fd)


__all__ = ["FollowPager"]
