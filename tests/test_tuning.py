"""Process tuning for the command-line programs: the allocator keeps freed page buffers."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_applies_in_a_fresh_process() -> None:
    """keep_freed_memory() succeeds on glibc, and the process allocates and frees page-sized buffers as before."""
    code = ("from bridge.tuning import keep_freed_memory\n"
            "ok = keep_freed_memory()\n"
            "bufs = [bytearray(300_000) for _ in range(50)]\n"
            "del bufs\n"
            "print(ok)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
