"""Scanning files on the server: pattern matching by lines, and the line index.

Pure code (no asyncio, no sockets): the server shell reads blocks in its
scan worker pool and feeds them here.

* :mod:`.matcher`: literal and RE2 matchers over byte buffers;
* :mod:`.lines`: the line loop (:class:`LineScanner`) and :class:`Match`;
* :mod:`.index`: line number <-> byte offset (:class:`LineIndex`) and its
  bounded cache.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

# Imported when first used (PEP 562): the client takes Match and Location
# from here without loading the matchers (RE2) it never runs.
_LAZY = {
    "LineIndex": ".index", "LineIndexCache": ".index", "Location": ".index",
    "DEFAULT_MAX_TEXT": ".lines", "LineScanner": ".lines", "Match": ".lines",
    "Matcher": ".matcher", "PatternError": ".matcher", "compile_pattern": ".matcher",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


if TYPE_CHECKING:
    from .index import LineIndex, LineIndexCache, Location  # noqa: E402
    from .lines import DEFAULT_MAX_TEXT, LineScanner, Match  # noqa: E402
    from .matcher import Matcher, PatternError, compile_pattern  # noqa: E402

__all__ = ["DEFAULT_MAX_TEXT", "LineIndex", "LineIndexCache", "LineScanner", "Location", "Match", "Matcher",
           "PatternError", "compile_pattern"]
