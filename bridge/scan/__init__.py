"""Scanning files on the server: pattern matching by lines, and the line index.

Pure code (no asyncio, no sockets): the server shell reads blocks in its
scan worker pool and feeds them here.

* :mod:`.matcher`: literal and RE2 matchers over byte buffers;
* :mod:`.lines`: the line loop (:class:`LineScanner`) and :class:`Match`;
* :mod:`.index`: line number <-> byte offset (:class:`LineIndex`) and its
  bounded cache.
"""

from .index import LineIndex, LineIndexCache, Location
from .lines import DEFAULT_MAX_TEXT, LineScanner, Match
from .matcher import Matcher, PatternError, compile_pattern

__all__ = ["DEFAULT_MAX_TEXT", "LineIndex", "LineIndexCache", "LineScanner", "Location", "Match", "Matcher", "PatternError", "compile_pattern"]
