"""Regular files: one way to open and check them, and the pager over a byte range."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.messages import PAGE_HEADROOM
from ..errors import ErrorCode, FileChangedError, StreamError
from .base import PageData, Pager, SourceInfo, cut_at_line
from .paths import open_file

#: Read without blocking (Linux >= 4.14): a page already in the page cache
#: is read on the event loop, without the hand-off to a worker thread and
#: back that costs more than the read itself (bench/README.md).
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
#: Where a page's bytes start in its buffer.  malloc only promises 16-byte
#: alignment, and the kernel's copy into a buffer at 16 mod 32 was several
#: times slower than into an aligned one in some runs on this machine's AMD
#: EPYC (bench/README.md); aligning costs one ctypes call per page.
_ALIGN = 64


def page_buffer(size: int, room: int = 0) -> memoryview:
    """A writable buffer of ``room + size`` bytes whose byte ``room`` is 64-byte aligned.

    With ``room``, the page's bytes go at ``[room:]`` and its header can be
    written in front of them (:meth:`FilePager.spaced`).
    """
    buffer = bytearray(room + size + _ALIGN)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    start = -(address + room) % _ALIGN
    return memoryview(buffer)[start:start + room + size]


def file_etag(st: os.stat_result) -> str:
    """Identity of one version of a file: its size and mtime in ns.

    No inode: replicas serving the same shared folder (NFS, a volume mounted
    on each) see the same size and mtime but not always the same inode
    number, and a download begun on one must resume on another
    (docs/protocol.md section 5).  Replacing a file by another of the same
    size with the very same nanosecond mtime (``touch -r``, ``cp -p`` of a
    same-sized file) is the case this cannot tell apart.
    """
    return f"{st.st_size:x}-{st.st_mtime_ns:x}"


class FilePager(Pager):
    """Pages ``[offset, offset+length)`` of a file, reading only on credit.

    The file is opened non-blocking (a FIFO cannot hang the server) and
    refused unless it is a regular file.  A page already in the page cache
    is read on the event loop (``RWF_NOWAIT``, which never waits for the
    disk); what is not is read in a worker thread.  Pages are memoryviews
    of fresh buffers, never reused, so a page stays valid as long as it is
    held.

    With ``root``, ``path`` is a cleaned collector path opened beneath
    ``root`` (:func:`~bridge.sources.paths.open_beneath`: never outside it,
    whatever symlinks do meanwhile); without, ``path`` is the caller's own.

    The bytes paged are those of one version of the file, the one the etag
    announces: after every read the descriptor is ``fstat``-ed again and a
    size or mtime different from the announced ones ends the stream with
    ``file_changed`` (so does ``if_match`` naming another etag).  A file
    replaced by rename or deleted keeps being paged from the open
    descriptor: that is still the announced version.
    """

    # A page cache hit is read on the loop; a miss waits for the disk, briefly.
    prompt = True

    def __init__(self, path: str | os.PathLike[str], offset: int = 0, length: int | None = None,
                 *, if_match: str | None = None, name: str | None = None, text: bool = False,
                 root: Path | None = None, refuse_links: bool = False,
                 callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        super().__init__(callback, **kwargs)
        self.text = text
        self.path = os.fspath(path)
        self.root = root
        self.refuse_links = refuse_links
        if name is None:
            name = (self.path or "/") if root is not None else os.path.basename(self.path)
        self.name = name
        self.offset = offset
        self.length = length
        self.if_match = if_match
        self.fd: int | None = None
        self._pos = offset
        self._end = offset
        self._size = 0
        self._mtime_ns = 0
        self._closed = False
        self._nowait = _NOWAIT
        # Pages returned and not sent yet (at most the one being sent and the
        # one read ahead), each with the view that has room for its header.
        self._spaced: deque[tuple[memoryview, memoryview]] = deque(maxlen=4)
        # close() may run while a read is still in its worker thread (the
        # stream was cancelled mid-read); the lock keeps the fd valid until
        # that read returns, so it can never read a recycled descriptor.
        # It also hands the descriptor over from _open: if the stream was
        # cancelled while the open ran in its thread, nobody will ever call
        # close() again, so _open closes what it opened itself.
        self._fd_lock = threading.Lock()

    async def start(self) -> SourceInfo:
        return await asyncio.to_thread(self._open)

    def _open(self) -> SourceInfo:
        fd, st, _ = open_file(self.path, root=self.root, shown=self.name,
                              refuse_links=self.refuse_links)
        try:
            etag = file_etag(st)
            if self.if_match is not None and self.if_match != etag:
                raise FileChangedError(f"{self.name} has changed since etag {self.if_match} "
                                       f"(now {etag})")
            if self.offset > st.st_size:
                raise StreamError(f"offset {self.offset} is beyond the end of {self.name} "
                                  f"({st.st_size} bytes)", ErrorCode.BAD_REQUEST)
            with self._fd_lock:
                if self._closed:
                    raise StreamError(f"{self.name} was closed while it was being opened",
                                      ErrorCode.CANCELLED)
                self.fd = fd
        except BaseException:
            os.close(fd)
            raise
        self._size = st.st_size
        self._mtime_ns = st.st_mtime_ns
        available = st.st_size - self.offset
        length = available if self.length is None else min(self.length, available)
        self._end = self.offset + length
        return SourceInfo(size=st.st_size, length=length, mtime=st.st_mtime, etag=etag)

    @property
    def exhausted(self) -> bool:
        return self.fd is not None and self._pos >= self._end

    async def next_page(self, size: int) -> memoryview | None:
        want = min(size, self._end - self._pos)
        if want <= 0:
            return None
        pos = self._pos
        spaced = page_buffer(want, PAGE_HEADROOM)
        view = spaced[PAGE_HEADROOM:]
        got = self._read_cached(view, pos)
        if got < want:
            await asyncio.to_thread(self._read, view[got:], pos + got)
        if self.text and pos + want < self._end:
            view = cut_at_line(view)
        self._pos += len(view)
        self._spaced.append((view, spaced[:PAGE_HEADROOM + len(view)]))
        return view

    def spaced(self, data: PageData) -> memoryview | None:
        for entry in self._spaced:
            if entry[0] is data:
                self._spaced.remove(entry)
                return entry[1]
        return None

    def _read_cached(self, view: memoryview, pos: int) -> int:
        """What of ``view`` the page cache holds, read on the loop without waiting for the disk (maybe 0)."""
        if not self._nowait or self.fd is None:
            return 0
        try:
            got = self._read_into(view, pos, self._nowait)
        except BlockingIOError:
            return 0  # not cached: the worker thread reads it
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self._nowait = 0  # this file system or kernel cannot: always use the thread
                return 0
            raise
        if got == len(view):
            self._check_unchanged(os.fstat(self.fd))
        return got

    def _read(self, view: memoryview, pos: int) -> None:
        """Fill ``view`` from ``pos`` (in a worker thread); a short or modified file is ``file_changed``."""
        with self._fd_lock:
            while view:
                if self.fd is None:
                    raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
                got = self._read_into(view, pos, 0)
                if not got:
                    raise FileChangedError(f"{self.name} shrank while it was being paged "
                                           f"(no data at offset {pos})")
                view, pos = view[got:], pos + got
            assert self.fd is not None
            # After the read: any write before or during it has moved mtime
            # (or the size) by now, so unchanged values vouch for these bytes.
            st = os.fstat(self.fd)
        self._check_unchanged(st)

    def _check_unchanged(self, st: os.stat_result) -> None:
        """The bytes just read belong to the announced version, or ``file_changed``.

        A file that only grew was appended to (a log being written): the
        announced range is intact, and paging it is the point, so growth is
        accepted and remembered.  A file that shrank, or whose mtime moved
        while its size stayed, was rewritten.  A rewrite that also grows the
        file cannot be told from an append by size and mtime; docs/protocol.md
        §5 says so.
        """
        if st.st_size > self._size:
            self._size, self._mtime_ns = st.st_size, st.st_mtime_ns
            return
        if st.st_size != self._size or st.st_mtime_ns != self._mtime_ns:
            raise FileChangedError(f"{self.name} was modified while it was being paged "
                                   f"(now {file_etag(st)}); the stream would mix two versions")

    def _read_into(self, view: memoryview, pos: int, flags: int) -> int:
        """The one place the file is read: ``preadv`` into ``view`` (for tests to fail on purpose)."""
        assert self.fd is not None
        return os.preadv(self.fd, [view], pos, flags)

    def close(self) -> None:
        self._spaced.clear()
        with self._fd_lock:
            self._closed = True
            if self.fd is not None:
                fd, self.fd = self.fd, None
                os.close(fd)


__all__ = ["FilePager", "file_etag"]
