"""Page compression for slow links: the codecs a stream may negotiate.

A collector lists the codecs it can decode in ``open.compress``; the server
answers with the one it will use in ``opened.compression`` (or none), and
then compresses each page only when that pays: a page that does not shrink
by at least :data:`MIN_SAVING` goes as it is.  A compressed page carries
``size``, its decompressed length; its ``xxh`` and the stream's digests
are over the decompressed bytes, so integrity means the same with or
without compression.

``zstd`` needs the optional ``zstandard`` package (``pip install
pagebridge[compress]``); without it neither side offers or accepts it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

from ..errors import IntegrityError


@functools.cache
def _zstandard() -> ModuleType | None:
    # Imported when a stream first needs it, not with the collector: a
    # command that never compresses (grep, cat) starts without it.
    try:
        import zstandard
    except ImportError:  # pragma: no cover - the optional extra is not installed
        return None
    return zstandard

#: A compressed page must save at least this share of its bytes, or it is
#: sent raw: the collector's decompression and the server's work buy
#: nothing on a page that barely shrinks (random or already compressed data).
MIN_SAVING = 0.05
#: zstd level 1: ~100 MiB/s per core on text on this machine (level 3 is 2.5x
#: slower for a ratio within 3%), far above the links compression is for.
ZSTD_LEVEL = 1


class Codec(Protocol):
    """One stream's compressor or decompressor (not shared between threads)."""

    name: str

    def compress(self, data: bytes | memoryview) -> bytes | None:
        """The compressed page, or None when compressing does not pay."""

    def decompress(self, data: bytes | memoryview, size: int) -> bytes:
        """Exactly ``size`` bytes, or IntegrityError (corrupt, or another size)."""


class ZstdCodec:
    """zstd, one independent frame per page (raw pages may come in between)."""

    name = "zstd"

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        zstandard = _zstandard()
        assert zstandard is not None
        self._error = zstandard.ZstdError
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()

    def compress(self, data: bytes | memoryview) -> bytes | None:
        packed: bytes = self._compressor.compress(data)
        return packed if len(packed) <= len(data) * (1 - MIN_SAVING) else None

    def decompress(self, data: bytes | memoryview, size: int) -> bytes:
        try:
            # max_output_size bounds what a hostile frame can make us allocate.
            raw: bytes = self._decompressor.decompress(data, max_output_size=size)
        except self._error as exc:
            raise IntegrityError(f"a compressed page does not decompress ({exc})") from None
        if len(raw) != size:
            raise IntegrityError(f"a compressed page decompressed to {len(raw)} bytes, not {size}")
        return raw


def available() -> list[str]:
    """The codecs this installation can use, in order of preference."""
    return ["zstd"] if _zstandard() is not None else []


def choose(offered: Sequence[object] | None) -> str | None:
    """The server's pick among a collector's offer: its first codec we have."""
    have = available()
    for name in offered or ():
        if isinstance(name, str) and name in have:
            return name
    return None


def make(name: str) -> Codec:
    """A fresh codec object for one stream."""
    if name == "zstd" and _zstandard() is not None:
        return ZstdCodec()
    raise ValueError(f"codec {name!r} is not available")


__all__ = ["Codec", "MIN_SAVING", "ZstdCodec", "available", "choose", "make"]
