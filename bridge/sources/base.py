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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..core.pager import StreamStats
from ..errors import PagebridgeError

#: A page's bytes as a pager returns them: bytes, or a view of a buffer it
#: will not reuse (the file pager reads into fresh aligned buffers).
PageData = bytes | memoryview
AnyPage = TypeVar("AnyPage", bytes, memoryview)


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
        # The core's counters for the stream this pager feeds (bound when it opens).
        self._stats: StreamStats | None = None

    # ------------------------------------------------------------ what was sent

    def bind(self, stats: StreamStats) -> None:
        """Attach the core's counters of this pager's stream (done by the server)."""
        self._stats = stats

    @property
    def pages_sent(self) -> int:
        """Pages sent so far, as counted by the protocol core."""
        return self._stats.pages if self._stats is not None else 0

    @property
    def bytes_sent(self) -> int:
        """Bytes sent so far, as counted by the protocol core."""
        return self._stats.bytes if self._stats is not None else 0

    # ------------------------------------------------------------ to override

    #: True for sources that produce at their own pace (a followed file, a
    #: command's output): the server does not read their next page ahead.
    live: bool = False

    #: True for sources whose first page is at hand as soon as they started
    #: (a file, bytes in memory): the server then sends ``opened`` together
    #: with that page, in one write.  Other sources get ``opened`` at once,
    #: whatever their first page waits for.
    prompt: bool = False

    async def ready(self) -> None:
        """Wait until :meth:`next_page` would find something to return.

        The server calls it before taking page budget for the next read, so
        a live source waiting for its writer holds no budget and no page.
        Sources that never wait for data need not override it.
        """

    @property
    def exhausted(self) -> bool:
        """True when the next :meth:`next_page` is known to return ``None``.

        Lets the server send ``end`` without waiting for credit (``end`` takes
        none).  Sources that cannot tell return False (the default).
        """
        return False

    async def start(self) -> SourceInfo:
        """Prepare the source (open files...) and describe it.  May raise StreamError."""
        return SourceInfo()

    async def next_page(self, size: int) -> PageData | SourceEvent | None:
        """Return the next page, at most ``size`` bytes; ``None`` or ``b""`` ends the stream.

        Called only when the collector's credit allows another page.  Must not
        block the event loop: run blocking reads in a thread.  A live source
        may return a :class:`SourceEvent` instead, which costs no credit.
        """
        raise NotImplementedError

    def spaced(self, data: PageData) -> memoryview | None:
        """A writable view of ``data`` with room for the page's header right before it, or None.

        ``data`` must be what :meth:`next_page` just returned.  The server
        writes the header into that room and sends header and data as one
        buffer, instead of joining them into a new one (a copy of the page).
        Only a pager that made the room answers; the default is None.
        """
        return None

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

    prompt = True

    def __init__(self, data: bytes, callback: Callable[..., Any] | None = None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(callback, *args, **kwargs)
        self._data = memoryview(bytes(data))
        self._pos = 0

    async def start(self) -> SourceInfo:
        return SourceInfo(size=len(self._data), length=len(self._data))

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._data)

    async def next_page(self, size: int) -> bytes | None:
        page = self._data[self._pos:self._pos + size]
        self._pos += len(page)
        return bytes(page)

    def close(self) -> None:
        self._data.release()


def cut_at_line(data: AnyPage) -> AnyPage:
    """Text mode: end the page just after its last newline, when it holds one.

    Searches back from the end a few KiB at a time (lines are short), so a
    memoryview page is not copied whole to be searched.
    """
    size = len(data)
    end, step = size, 4096
    while end > 0:
        start = max(0, end - step)
        found = bytes(data[start:end]).rfind(b"\n")
        if found != -1:
            cut = start + found + 1
            return data if cut == size else data[:cut]
        end, step = start, step * 4
    return data


__all__ = ["cut_at_line", "BytesPager", "PageData", "Pager", "PagingResult", "SourceEvent", "SourceInfo"]
