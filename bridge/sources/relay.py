"""A source paged from another pagebridge server: how workers share push sources.

With ``serve --workers N`` a push source runs once, in the supervisor
(:mod:`bridge.aio.workers`); each worker mounts it as a :class:`RelayPager`
factory.  A relay opens the source on the supervisor's private server as a
collector of its own, with a small window, and hands on each page when the
server asks it for one, i.e. when the real collector has credit.  So credit
flows end to end: a collector that stops acknowledging stops its relay,
whose subscriber in the supervisor fills its bounded buffer and then loses
bytes (``gap``) or pauses the source, as with one process.  Events
(``gap``...) and errors (``too_slow``...) are passed on unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..core import messages as m
from .base import Pager, SourceEvent, SourceInfo

#: Pages the supervisor may send a relay ahead of its collector.
RELAY_WINDOW = 4


class RelayPager(Pager):
    """Pages ``name`` as served by the pagebridge server at ``url``."""

    #: A push source may wait long for data: budget is taken when a page arrives.
    live = True

    def __init__(self, url: str, token: str | None, name: str, *, text: bool = False,
                 window: int = RELAY_WINDOW) -> None:
        super().__init__()
        self.url = url
        self.token = token
        self.name = name
        self.text = text
        self.window = window
        self._session: Any = None
        self._stream: Any = None
        self._rest = b""  # the part of an upstream page beyond the size asked for

    async def start(self) -> SourceInfo:
        from ..aio.client import connect

        self._session = await connect(self.url, self.token)
        self._stream = self._session.pages(self.name, window=self.window, text=self.text)
        await self._stream.wait_opened()
        return SourceInfo()

    async def next_page(self, size: int) -> bytes | SourceEvent | None:
        if not self._rest:
            try:
                item = await self._stream.__anext__()
            except StopAsyncIteration:
                return None
            if isinstance(item, m.Event):
                return SourceEvent(item.kind, item.offset, item.lost, item.detail)
            self._rest = item.data
        page, self._rest = self._rest[:size], self._rest[size:]
        return page

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            # close() is synchronous (Pager.finish); the goodbye runs on its own.
            task = asyncio.ensure_future(session.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


def relay_factory(url: str, token: str | None, name: str) -> Callable[[m.Open], RelayPager]:
    """A mount factory: each collector that opens the mount gets its own relay of ``name``."""
    def factory(request: m.Open) -> RelayPager:
        return RelayPager(url, token, name, text=bool(request.text))
    return factory


__all__ = ["RELAY_WINDOW", "RelayPager", "relay_factory"]
