"""Decompression with a ceiling on the output, so a small body cannot expand without limit.

A worker decompresses a body before anything else reads it, signed messages included (the
signature covers the serialized body, inside the compression), so a few kilobytes crafted to
expand to gigabytes must be stopped while decompressing, not after. Each function stops as
soon as the output passes ``limit`` bytes (0 means no limit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from celeriac.plugin import MessageError

#: Input fed to the zstandard package at a time when a limit is set: it has no output limit
#: of its own, and a zstd block of a few bytes can expand to 128 KiB.
ZSTANDARD_CHUNK = 256


class TooLargeError(MessageError):
    """A compressed body expands past ``[compressors] max_size``."""


class StreamDecompressor(Protocol):
    """The incremental API of ``bz2.BZ2Decompressor``, ``lzma.LZMADecompressor`` and
    ``compression.zstd.ZstdDecompressor``."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def too_large(name: str, limit: int) -> TooLargeError:
    return TooLargeError(f"{name} body expands to more than {limit} bytes ([compressors] max_size); refused")


def truncated(name: str) -> MessageError:
    return MessageError(f"{name} body is truncated: it ends before the end of its stream")


def zlib_decompress(data: bytes, limit: int) -> bytes:
    """One zlib stream; like ``zlib.decompress``, data after its end is ignored."""
    import zlib

    decompressor = zlib.decompressobj()
    out = decompressor.decompress(data, limit + 1 if limit else 0)  # 0: no limit, for zlib
    if limit and len(out) > limit:
        raise too_large("zlib", limit)
    if not decompressor.eof:
        raise truncated("zlib")
    return out


def streams_decompress(name: str, make: Callable[[], StreamDecompressor], data: bytes, limit: int) -> bytes:
    """One or more concatenated streams, as ``bz2.decompress`` and friends read them."""
    parts: list[bytes] = []
    total = 0
    while data:
        decompressor = make()
        out = decompressor.decompress(data, limit - total + 1 if limit else -1)
        total += len(out)
        if limit and total > limit:
            raise too_large(name, limit)
        if not decompressor.eof:
            raise truncated(name)
        parts.append(out)
        data = decompressor.unused_data
    return b"".join(parts)


def zstandard_decompress(data: bytes, limit: int) -> bytes:
    """One or more zstd frames through the zstandard package."""
    import zstandard

    context = zstandard.ZstdDecompressor()
    chunk = ZSTANDARD_CHUNK if limit else max(len(data), 1)
    parts: list[bytes] = []
    total = 0
    while data:
        decompressor = context.decompressobj()
        position = 0
        while not decompressor.eof and position < len(data):
            out = decompressor.decompress(data[position : position + chunk])
            position += chunk
            total += len(out)
            if limit and total > limit:
                raise too_large("zstd", limit)
            parts.append(out)
        if not decompressor.eof:
            raise truncated("zstd")
        data = decompressor.unused_data + data[position:]
    return b"".join(parts)
