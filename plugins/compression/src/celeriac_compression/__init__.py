"""Message body compression for celeriac: zlib, bzip2, lzma and zstd, as kombu names them.

A producer with ``compression = "zlib"`` compresses each task body and sets the
``compression`` header to the compressor's content type (``application/x-gzip`` for zlib,
kombu's name), which is what Celery does; any worker with this plugin decompresses by that
header, whatever its own ``compression`` setting, and Celery workers read ours. zstd is
offered when a zstd library is importable (``compression.zstd``, ``backports.zstd`` or
``zstandard``). Libraries are imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from attrs import Attribute
from attrs import field
from attrs import frozen

from celeriac.plugin import Compressor
from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import hookimpl
from celeriac_compression._bounded import TooLargeError
from celeriac_compression._compressors import DEFAULT_MAX_SIZE
from celeriac_compression._compressors import DEFAULT_THRESHOLD
from celeriac_compression._compressors import Bzip2Compressor
from celeriac_compression._compressors import LzmaCompressor
from celeriac_compression._compressors import ZlibCompressor
from celeriac_compression._compressors import ZstdBackend
from celeriac_compression._compressors import ZstdCompressor
from celeriac_compression._compressors import zstd_backends

try:
    __version__ = _version("celeriac-compression")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"


#: The TOML table of this plugin's settings. Not ``[compression]``: that key is the kernel's
#: ``compression = "zlib"``, which picks the compressor.
SECTION = "compressors"


def _not_negative(instance: object, attribute: Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, not {value}")


@frozen(kw_only=True)
class CompressionConfig:
    """``[compressors]``: when to compress, and how far a body may expand when decompressed."""

    #: Bodies shorter than this many bytes are sent uncompressed (the kernel's codec reads it).
    threshold: int = field(default=DEFAULT_THRESHOLD, validator=_not_negative)
    #: The largest decompressed body a worker accepts, in bytes; 0 means no limit.
    max_size: int = field(default=DEFAULT_MAX_SIZE, validator=_not_negative)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    """Declare ``[compressors]``."""
    return [
        ConfigSection(name=SECTION, cls=CompressionConfig, description="compression threshold and size limit")
    ]


@hookimpl
def celeriac_add_compressors(config: Config) -> Sequence[Compressor]:
    """Offer zlib, bzip2, lzma and (when a library is importable) zstd, each also under
    kombu's alias for it (``gzip``, ``bzip``, ``xz``, ``zstandard``)."""
    section = config.section(SECTION, CompressionConfig)
    threshold, max_size = section.threshold, section.max_size
    kinds: list[tuple[Callable[..., Compressor], tuple[str, ...]]] = [
        (ZlibCompressor, ("zlib", "gzip")),
        (Bzip2Compressor, ("bzip2", "bzip")),
        (LzmaCompressor, ("lzma", "xz")),
    ]
    if zstd_backends():
        kinds.append((ZstdCompressor, ("zstd", "zstandard")))
    return [
        kind(name=name, threshold=threshold, max_size=max_size) for kind, names in kinds for name in names
    ]


__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_THRESHOLD",
    "SECTION",
    "Bzip2Compressor",
    "CompressionConfig",
    "LzmaCompressor",
    "TooLargeError",
    "ZlibCompressor",
    "ZstdBackend",
    "ZstdCompressor",
    "__version__",
    "celeriac_add_compressors",
    "celeriac_add_config_sections",
    "zstd_backends",
]
