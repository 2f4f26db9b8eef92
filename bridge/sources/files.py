"""Regular files: one way to open and check them, and the pager over a byte range."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ErrorCode, FileChangedError, StreamError
from .base import Pager, SourceInfo, cut_at_line
from .paths import check_regular, os_error

#: Read without blocking (Linux >= 4.14): a page already in the page cache
#: is read on the event loop, without the hand-off to a worker thread and
#: back that costs more than the read itself (bench/README.md).
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
#: Where a page's bytes start in its buffer.  The kernel copies into a
#: destination aligned to 32 bytes several times faster than into one at
#: 16 mod 32 (measured: 35 vs 160 us per 256 KiB on this machine's AMD
#: EPYC), and malloc only promises 16; so buffers are aligned by hand.
_ALIGN = 64


def page_buffer(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes whose first byte is 64-byte aligned."""
    buffer = bytearray(size + _ALIGN)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    start = -address % _ALIGN
    return memoryview(buffer)[start:start + size]


def file_etag(st: os.stat_result) -> str:
    """Identity of one version of a file: inode, size and mtime in ns."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


class FilePager(Pager):
    """Pages ``[offset, offset+length)`` of a file, reading only on credit.

    The file is opened non-blocking (a FIFO cannot hang the server) and
    refused unless it is a regular file.  A page already in the page cache
    is read on the event loop (``RWF_NOWAIT``, which never waits for the
    disk); what is not is read in a worker thread.  Pages are memoryviews
    of fresh buffers, never reused, so a page stays valid as long as it is
    held.
    The bytes paged are those of the version announced by the etag: a file
    that shrinks under the pager, or whose etag differs from ``if_match``,
    ends the stream with ``file_changed``; appends are ignored (use follow).
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0, length: int | None = None,
                 *, if_match: str | None = None, name: str | None = None, text: bool = False,
                 callback: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        super().__init__(callback, **kwargs)
        self.text = text
        self.path = os.fspath(path)
        self.name = name if name is not None else os.path.basename(self.path)
        self.offset = offset
        self.length = length
        self.if_match = if_match
        self.fd: int | None = None
        self._pos = offset
        self._end = offset
        self._size = 0
        # close() may run while a read is still in its worker thread (the
        # stream was cancelled mid-read); the lock keeps the fd valid until
        # that read returns, so it can never read a recycled descriptor.
        self._fd_lock = threading.Lock()
        self._nowait = _NOWAIT

    async def start(self) -> SourceInfo:
        return await asyncio.to_thread(self._open)

    def _open(self) -> SourceInfo:
        try:
            # stat first: a socket cannot even be opened (ENXIO), and the
            # collector deserves "not a regular file", not an I/O error.
            check_regular(os.stat(self.path), self.name)
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            raise os_error(exc, self.name) from None
        try:
            st = os.fstat(fd)
            check_regular(st, self.name)
            etag = file_etag(st)
            if self.if_match is not None and self.if_match != etag:
                raise FileChangedError(f"{self.name} has changed since etag {self.if_match} "
                                       f"(now {etag})")
            if self.offset > st.st_size:
                raise StreamError(f"offset {self.offset} is beyond the end of {self.name} "
                                  f"({st.st_size} bytes)", ErrorCode.BAD_REQUEST)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self._size = st.st_size
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
        view = page_buffer(want)
        got = self._read_cached(view, pos)
        if got < want:
            await asyncio.to_thread(self._read, view[got:], pos + got)
        if self.text and pos + want < self._end:
            view = cut_at_line(view)
        self._pos += len(view)
        return view

    def _read_cached(self, view: memoryview, pos: int) -> int:
        """What of ``view`` the page cache holds, read without waiting for the disk (maybe 0)."""
        if not self._nowait or self.fd is None:
            return 0
        try:
            return self._read_into(view, pos, self._nowait)
        except BlockingIOError:
            return 0  # not cached: the worker thread reads it
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self._nowait = 0  # this file system or kernel cannot: always use the thread
                return 0
            raise

    def _read(self, view: memoryview, pos: int) -> None:
        """Fill ``view`` from ``pos`` (in a worker thread); a short file is ``file_changed``."""
        with self._fd_lock:
            while view:
                if self.fd is None:
                    raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
                got = self._read_into(view, pos, 0)
                if not got:
                    raise FileChangedError(f"{self.name} shrank while it was being paged "
                                           f"(no data at offset {pos})")
                view, pos = view[got:], pos + got

    def _read_into(self, view: memoryview, pos: int, flags: int) -> int:
        """The one place the file is read: ``preadv`` into ``view`` (for tests to fail on purpose)."""
        assert self.fd is not None
        return os.preadv(self.fd, [view], pos, flags)

    def close(self) -> None:
        with self._fd_lock:
            if self.fd is not None:
                fd, self.fd = self.fd, None
                os.close(fd)


__all__ = ["FilePager", "file_etag"]
