"""The MessagePack extension types celeriac-msgpack writes for values msgpack has no type for.

kombu's msgpack serializer (``packb(value, use_bin_type=True)``, ``unpackb(data, raw=False)``)
has no extension types: it refuses these values when writing, and hands them back as
``msgpack.ExtType`` objects when reading ours. The codes are in msgpack's application range
(0-127) and the payloads are the text forms the JSON tags use, so they are easy to read from
any language:

=====  =============  ===================================================================
code   Python type    payload
=====  =============  ===================================================================
1      ``datetime``   ``datetime.isoformat(value)`` as UTF-8 (offset kept; naive stays naive)
2      ``date``       ``value.isoformat()`` as UTF-8
3      ``time``       ``value.isoformat()`` as UTF-8
4      ``UUID``       the 16 bytes of ``value.bytes``
5      ``Decimal``    ``str(value)`` as UTF-8
-1     (read only)    msgpack's standard timestamp, read as an aware UTC ``datetime``
=====  =============  ===================================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from datetime import datetime
from datetime import time
from decimal import Decimal
from typing import Any
from typing import Final

DATETIME: Final = 1
DATE: Final = 2
TIME: Final = 3
UUID: Final = 4
DECIMAL: Final = 5


class UnsupportedTypeError(TypeError):
    """Internal: ``value`` has no msgpack form; the serializer names it in a SerializationError."""

    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)
        self.value = value


class ExtValueError(ValueError):
    """Internal: an extension payload that cannot be read."""


def _text(value: str) -> bytes:
    return value.encode("utf-8")


# Checked in this order with isinstance: datetime is a date subclass.
_ENCODERS: tuple[tuple[type[Any], int, Callable[[Any], bytes]], ...] = (
    (datetime, DATETIME, lambda v: _text(datetime.isoformat(v))),
    (date, DATE, lambda v: _text(date.isoformat(v))),
    (time, TIME, lambda v: _text(time.isoformat(v))),
    (uuid.UUID, UUID, lambda v: v.bytes),
    (Decimal, DECIMAL, lambda v: _text(str(v))),
)

_DECODERS: dict[int, Callable[[bytes], Any]] = {
    DATETIME: lambda b: datetime.fromisoformat(b.decode("utf-8")),
    DATE: lambda b: date.fromisoformat(b.decode("utf-8")),
    TIME: lambda b: time.fromisoformat(b.decode("utf-8")),
    UUID: lambda b: uuid.UUID(bytes=b),
    DECIMAL: lambda b: Decimal(b.decode("utf-8")),
}
NAMES: Final = {DATETIME: "datetime", DATE: "date", TIME: "time", UUID: "UUID", DECIMAL: "Decimal"}


def encode(value: object) -> tuple[int, bytes]:
    """Return ``(code, payload)`` for a value msgpack lacks a type for.

    :raises UnsupportedTypeError: for any value none of the extension types carries.
    """
    for kind, code, encoder in _ENCODERS:
        if isinstance(value, kind):
            return code, encoder(value)
    raise UnsupportedTypeError(value)


def decode(code: int, payload: bytes) -> Any:
    """Rebuild the value of an extension payload.

    :raises ExtValueError: for an unknown code or a payload the code cannot be read from.
    """
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise ExtValueError(
            f"unknown msgpack extension type {code} (celeriac-msgpack reads "
            f"{', '.join(f'{c} ({n})' for c, n in NAMES.items())} and -1 (timestamp))"
        )
    try:
        return decoder(payload)
    # Bad text is a UnicodeDecodeError or ValueError; a bad Decimal an ArithmeticError
    # (InvalidOperation); a UUID of the wrong length a ValueError.
    except (ValueError, ArithmeticError) as exc:
        raise ExtValueError(f"invalid msgpack {NAMES[code]} extension {payload!r}: {exc}") from exc
