"""Logging set-up: plain lines, or JSON lines carrying the connection id.

Every WebSocket connection gets a short id when it is accepted
(:func:`new_connection_id`), kept in a context variable: asyncio copies the
context into every task started from the connection's handler, so each log
record made on its behalf (its streams, its listings, its errors) carries
that id without anyone passing it along.

``pagebridge serve --log-json`` writes one JSON object per line to stderr::

    {"ts": "2026-05-01T12:00:00.123Z", "level": "INFO", "logger": "bridge.server",
     "msg": "collector connected: pagebridge-py/0.1.0", "conn": "3f9a1c2e", "worker": 0}
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from typing import Any

#: The id of the connection the current task works for ("-" outside any).
connection_id: contextvars.ContextVar[str] = contextvars.ContextVar("pagebridge_connection", default="-")


def new_connection_id() -> str:
    """Give the current context (a connection's handler) a fresh id, and return it."""
    value = os.urandom(4).hex()  # as secrets.token_hex(4), without importing secrets (start-up time)
    connection_id.set(value)
    return value


class ConnectionFilter(logging.Filter):
    """Adds ``record.conn`` (the connection id) and ``record.worker`` to every record."""

    def __init__(self, worker: int = 0) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = connection_id.get()
        record.worker = self.worker
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, conn, worker (and exc if any)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(), "conn": getattr(record, "conn", "-"),
            "worker": getattr(record, "worker", 0)}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        import json  # only servers asked for JSON lines pay for it

        return json.dumps(entry, ensure_ascii=False)


def configure(*, verbose: bool, json_lines: bool, worker: int = 0) -> None:
    """Set up the root logger for the command line (stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConnectionFilter(worker))
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s [%(conn)s] %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose or json_lines else logging.WARNING)


__all__ = ["ConnectionFilter", "JsonFormatter", "configure", "connection_id", "new_connection_id"]
