"""The compressors: kombu's content types, the standard library's formats and defaults.

kombu registers ``zlib.compress`` under ``application/x-gzip`` (the body is a zlib stream, not a
gzip file, whatever the name says), ``bz2.compress`` under ``application/x-bz2``,
``lzma.compress`` (the xz format) under ``application/x-lzma`` and ``zstd.compress`` under
``application/zstd``, and a producer puts that content type in the ``compression`` header. So
do these, with the same default levels, so that either side decompresses what the other sends.
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar
from typing import Final
from typing import Literal
from typing import Protocol
from typing import cast
from typing import final

from attrs import Attribute
from attrs import field
from attrs import frozen

from celeriac.plugin import MessageError
from celeriac.plugin import PluginError
from celeriac_compression import _bounded

DEFAULT_THRESHOLD: Final = 1024
DEFAULT_MAX_SIZE: Final = 64 * 1024 * 1024

ZstdBackend = Literal["auto", "compression.zstd", "backports.zstd", "zstandard"]
_ZSTD_MODULES: Final[tuple[ZstdBackend, ...]] = ("compression.zstd", "backports.zstd", "zstandard")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # the parent package (compression, backports) is not there
        return False


def zstd_backends() -> list[ZstdBackend]:
    """The zstd libraries importable here, preferred first (kombu's choice, then zstandard)."""
    return [module for module in _ZSTD_MODULES if _importable(module)]


def _not_negative(_: object, attribute: Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, not {value}")


def _known_backend(_: object, attribute: Attribute[ZstdBackend], value: ZstdBackend) -> None:
    if value != "auto" and value not in _ZSTD_MODULES:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(_ZSTD_MODULES)}, not {value!r}")


# The limits every compressor takes; attrs writes the constructor, validation and repr.
def _threshold() -> int:
    return field(default=DEFAULT_THRESHOLD, validator=_not_negative)


def _max_size() -> int:
    return field(default=DEFAULT_MAX_SIZE, validator=_not_negative)


@final
@frozen(kw_only=True)
class ZlibCompressor:
    """zlib (``zlib.compress``, level 6), under kombu's ``application/x-gzip``.

    :param name: the name ``compression`` selects it by (``gzip`` is kombu's alias).
    :param threshold: bodies shorter than this many bytes are best sent uncompressed.
    :param max_size: the largest decompressed body accepted, in bytes; 0 means no limit.
    """

    content_type: ClassVar[str] = "application/x-gzip"

    name: str = "zlib"
    threshold: int = _threshold()
    max_size: int = _max_size()

    def compress(self, data: bytes) -> bytes:
        import zlib

        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        import zlib

        try:
            return _bounded.zlib_decompress(data, self.max_size)
        except zlib.error as exc:
            raise MessageError(f"invalid zlib body: {exc}") from exc


@final
@frozen(kw_only=True)
class Bzip2Compressor:
    """bzip2 (``bz2.compress``, level 9), under kombu's ``application/x-bz2``.

    Parameters as for :class:`ZlibCompressor` (kombu's alias: ``bzip``).
    """

    content_type: ClassVar[str] = "application/x-bz2"

    name: str = "bzip2"
    threshold: int = _threshold()
    max_size: int = _max_size()

    def compress(self, data: bytes) -> bytes:
        import bz2

        return bz2.compress(data)

    def decompress(self, data: bytes) -> bytes:
        import bz2

        try:
            return _bounded.streams_decompress("bzip2", bz2.BZ2Decompressor, data, self.max_size)
        except OSError as exc:  # bz2 reports invalid data as OSError
            raise MessageError(f"invalid bzip2 body: {exc}") from exc


@final
@frozen(kw_only=True)
class LzmaCompressor:
    """xz (``lzma.compress``, preset 6), under kombu's ``application/x-lzma``.

    Parameters as for :class:`ZlibCompressor` (kombu's alias: ``xz``). Reading takes the
    legacy ``.lzma`` format too, as ``lzma.decompress`` does.
    """

    content_type: ClassVar[str] = "application/x-lzma"

    name: str = "lzma"
    threshold: int = _threshold()
    max_size: int = _max_size()

    def compress(self, data: bytes) -> bytes:
        import lzma

        return lzma.compress(data)

    def decompress(self, data: bytes) -> bytes:
        import lzma

        try:
            return _bounded.streams_decompress("lzma", lzma.LZMADecompressor, data, self.max_size)
        except lzma.LZMAError as exc:
            raise MessageError(f"invalid lzma body: {exc}") from exc


@final
@frozen(kw_only=True)
class ZstdCompressor:
    """Zstandard (level 3), under kombu's ``application/zstd``.

    Parameters as for :class:`ZlibCompressor` (kombu's alias: ``zstandard``), and:

    :param backend: ``compression.zstd`` (Python 3.14+), ``backports.zstd`` (what kombu uses
        before 3.14) or ``zstandard``; ``auto`` takes the first importable, in that order. All
        write and read the same standard zstd frames.
    """

    content_type: ClassVar[str] = "application/zstd"

    name: str = "zstd"
    threshold: int = _threshold()
    max_size: int = _max_size()
    requested_backend: ZstdBackend = field(default="auto", alias="backend", validator=_known_backend)

    @property
    def backend(self) -> ZstdBackend:
        """The zstd library in use; raises :class:`PluginError` when none is installed."""
        if self.requested_backend != "auto":
            return self.requested_backend
        found = zstd_backends()
        if not found:
            raise PluginError(
                "zstd compression needs a zstd library: pip install 'celeriac-compression[zstd]' "
                "(or zstandard), or use Python 3.14+"
            )
        return found[0]

    def compress(self, data: bytes) -> bytes:
        backend = self.backend
        if backend == "zstandard":
            import zstandard

            compressed: bytes = zstandard.ZstdCompressor(level=3).compress(data)
            return compressed
        return _stdlib_zstd(backend).compress(data)

    def decompress(self, data: bytes) -> bytes:
        backend = self.backend
        if backend == "zstandard":
            import zstandard

            try:
                return _bounded.zstandard_decompress(data, self.max_size)
            except zstandard.ZstdError as exc:
                raise MessageError(f"invalid zstd body: {exc}") from exc
        module = _stdlib_zstd(backend)
        try:
            return _bounded.streams_decompress("zstd", module.ZstdDecompressor, data, self.max_size)
        except module.ZstdError as exc:
            raise MessageError(f"invalid zstd body: {exc}") from exc


class _ZstdModule(Protocol):
    """What is used of ``compression.zstd`` and ``backports.zstd``, which have the same API."""

    ZstdError: type[Exception]

    def compress(self, data: bytes) -> bytes: ...

    def ZstdDecompressor(self) -> _bounded.StreamDecompressor: ...  # noqa: N802 - the module's name


def _stdlib_zstd(backend: ZstdBackend) -> _ZstdModule:
    """``compression.zstd`` or its backport."""
    if backend == "compression.zstd":
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]  # Python 3.14+
    else:
        from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]
    return cast("_ZstdModule", zstd)
