"""Budgets: what the server may hold, counted, and waited for or refused beyond.

Every resource a peer can make the server spend has an owner and a limit
(docs/security.md, "Budgets"):

* :class:`ByteBudget` counts bytes of pages between a source and the socket,
  per connection and per server.  A page is read from its source only once
  both budgets have room for it, and the room is given back when the page
  has been written to the socket, so a peer that does not read holds at most
  its connection's budget (and slows only itself).
* :class:`Slots` counts things that are refused, not waited for, beyond
  their limit: open sources (descriptors), queued listings.
* :class:`FailureLimiter` remembers failed ``hello``\\ s per peer address and
  says how long that peer must wait before trying again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time


class ByteBudget:
    """A count of bytes with an upper bound; acquiring beyond it waits, in FIFO order.

    A single request larger than the whole budget is admitted when nothing
    else is held (it could never fit otherwise), so the bound is
    ``max(limit, largest request)``.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a budget must be at least 1 byte")
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, n: int) -> bool:
        return self.used + n <= self.limit or self.used == 0

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` bytes if they fit now and nobody waits before us."""
        if self._waiters or not self._fits(n):
            return False
        self.used += n
        return True

    async def acquire(self, n: int) -> None:
        if self.try_acquire(n):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(n)  # granted just as we were cancelled: give it back
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, n: int) -> None:
        self.used -= n
        if self.used < 0:  # pragma: no cover - a bug in a caller
            raise RuntimeError("released more than was acquired")
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if not self._fits(n):
                return
            self._waiters.popleft()
            self.used += n
            waiter.set_result(None)


class PageLease:
    """Room for pages in both the connection's and the server's budget."""

    def __init__(self, connection: ByteBudget, server: ByteBudget) -> None:
        self.connection = connection
        self.server = server

    async def acquire(self, n: int) -> None:
        """Wait for room for ``n`` bytes in both budgets."""
        await self.connection.acquire(n)
        try:
            await self.server.acquire(n)
        except BaseException:
            self.connection.release(n)
            raise

    def try_acquire(self, n: int) -> bool:
        """Take room at once if both budgets have it."""
        if not self.connection.try_acquire(n):
            return False
        if not self.server.try_acquire(n):
            self.connection.release(n)
            return False
        return True

    def release(self, n: int) -> None:
        self.server.release(n)
        self.connection.release(n)


class Slots:
    """A count with a hard limit: beyond it, callers are refused (never queued)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def give(self) -> None:
        self.used -= 1


class FailureLimiter:
    """Failed authentications per peer address, forgotten over time.

    Each failure adds one to the address's count, which decays by one every
    ``decay`` seconds.  Beyond ``allowed`` failures the address is locked out
    until its count decays below the limit; :meth:`retry_after` says for how
    long.  At most ``max_addresses`` are remembered (oldest dropped), so the
    table itself is bounded.
    """

    def __init__(self, *, allowed: int = 10, decay: float = 6.0, max_addresses: int = 10_000) -> None:
        self.allowed = allowed
        self.decay = decay
        self.max_addresses = max_addresses
        self._clock = time.monotonic
        self._table: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def _count(self, address: str) -> float:
        entry = self._table.get(address)
        if entry is None:
            return 0.0
        count, since = entry
        return max(0.0, count - (self._clock() - since) / self.decay)

    def failed(self, address: str) -> None:
        count = self._count(address) + 1
        self._table[address] = (count, self._clock())
        self._table.move_to_end(address)
        while len(self._table) > self.max_addresses:
            self._table.popitem(last=False)

    def retry_after(self, address: str) -> float:
        """Seconds this address must wait before its next attempt (0: go ahead)."""
        excess = self._count(address) - self.allowed
        return excess * self.decay if excess > 0 else 0.0


__all__ = ["ByteBudget", "FailureLimiter", "PageLease", "Slots"]
