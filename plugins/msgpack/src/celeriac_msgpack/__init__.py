"""MessagePack serializer for celeriac (``application/x-msgpack``), wire-compatible with kombu.

Plain values are packed exactly as kombu packs them (``use_bin_type=True``: ``str`` and
``bytes`` stay apart) and read as kombu reads them (``raw=False``). ``datetime``, ``date``,
``time``, ``UUID`` and ``Decimal`` travel as extension types (see :mod:`celeriac_msgpack._ext`),
which kombu does not have. msgpack is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from types import ModuleType
from typing import Any
from typing import Final
from typing import final

from celeriac.plugin import MessageError
from celeriac.plugin import PluginError
from celeriac.plugin import SerializationError
from celeriac.plugin import Serializer
from celeriac.plugin import hookimpl
from celeriac_msgpack import _ext
from celeriac_msgpack._ext import ExtValueError
from celeriac_msgpack._ext import UnsupportedTypeError

try:
    __version__ = _version("celeriac-msgpack")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

CONTENT_TYPE: Final = "application/x-msgpack"
SUPPORTED: Final = (
    "dict, list, tuple (as a list), str, bytes, int (64 bits), float, bool, None, "
    "datetime, date, time, UUID and Decimal"
)


@final
class MsgpackSerializer:
    """MessagePack with extension types for the values JSON tags in kombu.

    ``dumps`` raises :class:`~celeriac.SerializationError` for values msgpack cannot
    carry (sets, integers beyond 64 bits, other objects); ``loads`` raises
    :class:`~celeriac.MessageError` for bytes that are not one msgpack value, or hold an
    extension type it cannot read.
    """

    name = "msgpack"
    content_type = CONTENT_TYPE
    content_encoding = "binary"

    def __init__(self) -> None:
        self._msgpack: ModuleType | None = None

    def dumps(self, value: Any) -> bytes:
        """Pack ``value``; tuples become arrays and come back as lists, as in kombu."""
        msgpack = self._msgpack or self._import()
        try:
            data: bytes = msgpack.packb(value, use_bin_type=True, default=_pack_ext)
        except UnsupportedTypeError as exc:
            raise SerializationError(
                f"cannot encode an object of type {type(exc.value).__qualname__} as msgpack: "
                f"msgpack carries {SUPPORTED}"
            ) from None
        except OverflowError as exc:
            raise SerializationError(f"cannot encode value as msgpack: {exc}") from exc
        # msgpack reports its nesting limit as ValueError, and strings it cannot encode
        # (lone surrogates) as UnicodeEncodeError, a ValueError too.
        except (ValueError, TypeError) as exc:
            raise SerializationError(f"cannot encode value as msgpack: {exc}") from exc
        return data

    def loads(self, data: bytes) -> Any:
        """Unpack one msgpack value, reviving the extension types."""
        msgpack = self._msgpack or self._import()
        try:
            return msgpack.unpackb(
                data,
                raw=False,
                ext_hook=_unpack_ext,
                # msgpack's standard timestamp (-1), from other languages, as an aware datetime.
                timestamp=3,
                # kombu keeps msgpack's default (str and bytes keys only), so it cannot read back
                # {1: ...} it wrote; integer keys round-trip here. Arrays are lists, so a key can
                # still never be a container.
                strict_map_key=False,
            )
        except ExtValueError as exc:
            raise MessageError(str(exc)) from None
        # ExtraData, FormatError and StackError are ValueError subclasses; invalid UTF-8 in a
        # str is a UnicodeDecodeError, unhashable keys a TypeError.
        except (ValueError, TypeError) as exc:
            raise MessageError(f"invalid msgpack: {str(exc) or type(exc).__name__}") from exc

    def __repr__(self) -> str:
        return "MsgpackSerializer()"

    def __reduce__(self) -> tuple[Any, ...]:
        # The imported module cannot be pickled; a copy in another process imports it there.
        return (MsgpackSerializer, ())

    def _import(self) -> ModuleType:
        try:
            import msgpack
        except ImportError as exc:
            raise PluginError("celeriac-msgpack needs msgpack: pip install msgpack") from exc
        module: ModuleType = msgpack  # msgpack ships no type information
        self._msgpack = module
        return module


def _pack_ext(value: object) -> Any:
    import msgpack

    if isinstance(value, int):
        # msgpack hands integers it cannot pack to ``default``; say why instead of "unsupported".
        raise OverflowError(f"integer {value} does not fit in 64 bits")
    code, payload = _ext.encode(value)
    return msgpack.ExtType(code, payload)


def _unpack_ext(code: int, payload: bytes) -> Any:
    return _ext.decode(code, payload)


@hookimpl
def celeriac_add_serializers() -> Sequence[Serializer]:
    """Offer the ``msgpack`` serializer."""
    return [MsgpackSerializer()]


__all__ = ["CONTENT_TYPE", "SUPPORTED", "MsgpackSerializer", "__version__", "celeriac_add_serializers"]
