"""Work beside the event loop: one worker thread, fed in batches, with a bounded backlog.

A consumer that hashes or writes pages on the event loop holds up the
socket; handing each page to a thread costs a hand-off per page (about a
tenth of a millisecond here, more than hashing the page).  :class:`Beside`
gathers pages into batches of about ``batch_bytes`` and hands each batch
to one worker thread, in order, so the loop keeps reading while the disk
and the hash catch up.  At most ``backlog`` batches wait: beyond that
:meth:`Beside.put` waits, so a slow consumer slows the acknowledgements and
thus the server (memory stays bounded by ``batch_bytes * (backlog + 1)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
T = TypeVar("T")


class Beside(Generic[Item]):
    """Calls ``consume(batch)`` in one worker thread for batches of items, in order.

    Args:
        consume: called in the worker with a list of items; its exceptions
            surface from the next :meth:`put`, :meth:`drain` or :meth:`run`.
        size: how many bytes an item counts for (``len`` by default).
        batch_bytes: hand a batch over once it holds this many bytes.
        backlog: batches handed over and not yet consumed, at most.
    """

    def __init__(self, consume: Callable[[list[Item]], None], *, size: Callable[[Item], int] | None = None,
                 batch_bytes: int = 2 << 20, backlog: int = 3, name: str = "pagebridge-beside") -> None:
        if batch_bytes < 1 or backlog < 1:
            raise ValueError("batch_bytes and backlog must be at least 1")
        self._consume = consume
        self._size: Callable[[Item], int] = size if size is not None else len  # type: ignore[assignment]
        self.batch_bytes = batch_bytes
        self.backlog = backlog
        self._batch: list[Item] = []
        self._batched = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: deque[asyncio.Future[None]] = deque()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker, after every batch handed over before."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def put(self, item: Item) -> None:
        """Add an item; hands the batch over when full, waiting while the backlog is."""
        self._batch.append(item)
        self._batched += self._size(item)
        if self._batched >= self.batch_bytes:
            await self._hand_over()

    async def _hand_over(self) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._executor, self._consume, batch))
        while len(self._pending) > self.backlog:
            await self._pending.popleft()

    async def drain(self) -> None:
        """Hand over what is gathered and wait until everything is consumed."""
        if self._batch:
            await self._hand_over()
        while self._pending:
            await self._pending.popleft()

    async def close(self) -> None:
        """Wait for the batches already handed over (errors ignored), then stop the worker."""
        for future in self._pending:
            with contextlib.suppress(Exception):
                await future
        self._pending.clear()
        self._executor.shutdown(wait=False)


#: The largest single ``write`` (see :func:`write_all`).
WRITE_SIZE = 256 << 10


def write_all(fd: int, buffers: Sequence[bytes | memoryview]) -> None:
    """Write ``buffers`` in order, one ``write`` per buffer (partial writes continued).

    Not ``writev``, and no write larger than :data:`WRITE_SIZE`: on this
    machine's ext4 a ``writev`` of eight 256 KiB pages, or downloads written
    1 MiB at a time, took up to ten times the kernel CPU of the same bytes
    written 256 KiB at a time (bench/README.md, "download writer").
    """
    for buffer in buffers:
        view = memoryview(buffer).cast("B")
        while view:
            view = view[os.write(fd, view[:WRITE_SIZE]):]


__all__ = ["Beside", "write_all"]
