"""Where pages come from.

A :class:`Pager` is the server-side producer of one stream, modelled on
``twisted.spread.util.Pager``: the server asks it for the next page only
when the collector's credit allows one, so a pager never runs ahead of
its collector.  Subclass it and override :meth:`Pager.next_page` to page
anything; :class:`BytesPager` (PB's StringPager) and :class:`FilePager`
are the built-in ones.

Completion is reported exactly once, whatever happens: to the callback
given at construction (with its extra args and kwargs), and to whoever
awaits :meth:`Pager.wait`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ErrorCode, FileChangedError, PagebridgeError, StreamError
from .paths import check_regular


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What ``opened`` announces about a source (all optional)."""

    size: int | None = None  # total size of the source, if known
    length: int | None = None  # bytes this stream will carry, if known
    mtime: float | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """What a live pager returns instead of a page when its source changed.

    The server sends it as an ``event`` message (docs/protocol.md §7); it
    takes no credit.  ``offset`` is where the next page starts.
    """

    kind: str  # "rotated", "truncated", "deleted", "gap"
    offset: int
    lost: int | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class PagingResult:
    """How a paging ended."""

    ok: bool
    pages: int
    bytes: int
    error: PagebridgeError | None = None


class Pager:
    """Base class of page sources.

    Args:
        callback: called once when paging ends, as
            ``callback(result, *args, **kwargs)`` with a :class:`PagingResult`
            (``result.ok`` is False on cancel, disconnect or error).
    """

    def __init__(self, callback: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> None:
        self._callback = callback
        self._args = args
        self._kwargs = kwargs
        self._result: PagingResult | None = None
        self._waiters: list[asyncio.Future[PagingResult]] = []
        self.pages_sent = 0
        self.bytes_sent = 0

    # ------------------------------------------------------------ to override

    async def start(self) -> SourceInfo:
        """Prepare the source (open files...) and describe it.  May raise StreamError."""
        return SourceInfo()

    async def next_page(self, size: int) -> bytes | SourceEvent | None:
        """Return the next page, at most ``size`` bytes; ``None`` or ``b""`` ends the stream.

        Called only when the collector's credit allows another page.  Must not
        block the event loop: run blocking reads in a thread.  A live source
        may return a :class:`SourceEvent` instead, which costs no credit.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds.  Called exactly once, whatever happened."""

    # ------------------------------------------------------------ completion

    @property
    def result(self) -> PagingResult | None:
        """How paging ended, or None while it runs."""
        return self._result

    def finish(self, error: PagebridgeError | None = None) -> None:
        """Record the outcome (first call wins), close the source, notify."""
        if self._result is not None:
            return
        self._result = PagingResult(error is None, self.pages_sent, self.bytes_sent, error)
        try:
            self.close()
        finally:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(self._result)
            self._waiters.clear()
            if self._callback is not None:
                self._callback(self._result, *self._args, **self._kwargs)

    async def wait(self) -> PagingResult:
        """Wait until paging ends; raise its error if it failed."""
        if self._result is None:
            waiter: asyncio.Future[PagingResult] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        assert self._result is not None
        if self._result.error is not None:
            raise self._result.error
        return self._result


class BytesPager(Pager):
    """Pages a bytes object (Twisted's StringPager)."""

    def __init__(self, data: bytes, callback: Callable[..., Any] | None = None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(callback, *args, **kwargs)
        self._data = memoryview(bytes(data))
        self._pos = 0

    async def start(self) -> SourceInfo:
        return SourceInfo(size=len(self._data), length=len(self._data))

    async def next_page(self, size: int) -> bytes | None:
        page = self._data[self._pos:self._pos + size]
        self._pos += len(page)
        return bytes(page)

    def close(self) -> None:
        self._data.release()


def cut_at_line(data: bytes) -> bytes:
    """Text mode: end the page just after its last newline, when it holds one."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end != -1 and end != len(data) - 1 else data


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
        self.name = name or self.path
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
            from .paths import os_error

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


__all__ = ["cut_at_line", "BytesPager", "FilePager", "Pager", "PagingResult", "SourceEvent", "SourceInfo", "file_etag"]
