"""Regular files: one way to open and check them, and the pager over a byte range."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ErrorCode, FileChangedError, StreamError
from .base import Pager, SourceInfo, cut_at_line
from .paths import check_regular, os_error


def file_etag(st: os.stat_result) -> str:
    """Identity of one version of a file: inode, size and mtime in ns."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


class FilePager(Pager):
    """Pages ``[offset, offset+length)`` of a file, reading only on credit.

    The file is opened non-blocking (a FIFO cannot hang the server) and
    refused unless it is a regular file.  Reads run in a worker thread.
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

    async def next_page(self, size: int) -> bytes | None:
        want = min(size, self._end - self._pos)
        if want <= 0:
            return None
        data = await asyncio.to_thread(self._read, self._pos, want)
        if self.text and self._pos + len(data) < self._end:
            data = cut_at_line(data)
        self._pos += len(data)
        return data

    def _read(self, pos: int, want: int) -> bytes:
        with self._fd_lock:
            if self.fd is None:
                raise StreamError(f"{self.name} was closed", ErrorCode.CANCELLED)
            data = os.pread(self.fd, want, pos)
        if len(data) < want:
            raise FileChangedError(f"{self.name} shrank while it was being paged "
                                   f"(no data at offset {pos + len(data)})")
        return data

    def close(self) -> None:
        with self._fd_lock:
            if self.fd is not None:
                fd, self.fd = self.fd, None
                os.close(fd)


__all__ = ["FilePager", "file_etag"]
