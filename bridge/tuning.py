"""Process-wide tuning for the command-line programs (never applied by the library on import).

glibc's allocator returns memory to the kernel eagerly: a freed block of
256 KiB or more is unmapped, or trimmed off the top of the heap, so the
next page's buffer is fresh memory that faults in one 4 KiB page at a time.
pagebridge allocates several such buffers per page on each side (the file
read, the WebSocket frame, the socket's receive buffer), and on a virtual
machine those faults cost more than copying the page (measured in
bench/README.md, "Where the time goes").  :func:`keep_freed_memory` raises
the two thresholds so freed buffers are reused from the heap; the process
keeps up to ``trim`` bytes it no longer uses.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("bridge.tuning")

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(*, mmap_threshold: int = 32 << 20, trim: int = 128 << 20) -> bool:
    """Ask glibc to serve blocks under ``mmap_threshold`` from the heap and to keep ``trim`` bytes free.

    Returns False (and changes nothing) where the C library is not glibc.
    """
    try:
        # The symbols the process already has (libc among them), rather
        # than ctypes.util.find_library("c"), which runs `ldconfig -p` in a
        # subprocess: a few ms of every command's start-up.
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim))
    if not ok:  # pragma: no cover - a C library that refuses
        log.debug("mallopt refused the thresholds")
    return ok


__all__ = ["keep_freed_memory"]
