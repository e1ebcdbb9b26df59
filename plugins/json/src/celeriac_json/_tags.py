"""kombu's JSON type tags: how values JSON lacks travel as ``{"__type__": ..., "__value__": ...}``.

This is the format of ``kombu.utils.json`` since kombu 5.3 (what Celery 5.3+ sends and reads):

=============  ===============  ==============================================================
Python type    ``__type__``     ``__value__``
=============  ===============  ==============================================================
``datetime``   ``"datetime"``   ``datetime.isoformat(value)``, read with ``datetime.fromisoformat``
``date``       ``"date"``       ``value.isoformat()``, read as ``datetime.fromisoformat(v).date()``
``time``       ``"time"``       ``value.isoformat()``, read with ``time.fromisoformat``
``Decimal``    ``"decimal"``    ``str(value)``
``UUID``       ``"uuid"``       ``{"hex": value.hex}`` (kombu 5.3.0 also wrote ``"version"``)
``bytes``      ``"bytes"``      the bytes decoded as UTF-8, when they are valid UTF-8
``bytes``      ``"base64"``     standard base64 of the bytes otherwise
=============  ===============  ==============================================================

The checks run in that order with ``isinstance``, so ``datetime`` (a ``date`` subclass) wins over
``date``. An object with a ``__json__()`` method is replaced by what that method returns, before
any of the above, as kombu 5.3.6+ does. A dict is read as a tag only when its keys are exactly
``__type__`` and ``__value__``; such a dict with an unknown ``__type__`` is an error, as in kombu.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import date
from datetime import datetime
from datetime import time
from decimal import Decimal
from typing import Any

from celeriac.plugin import MessageError

TYPE_KEY = "__type__"
VALUE_KEY = "__value__"


class UnsupportedTypeError(Exception):
    """Internal: ``value`` has no JSON form; the serializer turns this into a SerializationError."""

    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)
        self.value = value


def encode_special(value: object) -> Any:
    """Return the JSON-able stand-in for a value JSON has no type for (the encoder's ``default``).

    :raises UnsupportedTypeError: when the value is none of the tagged types.
    """
    reducer = getattr(value, "__json__", None)
    if reducer is not None:
        return reducer()
    return encode_tagged(value)


def _encode_datetime(value: datetime) -> dict[str, Any]:
    # kombu calls the base method, so a subclass's own isoformat (pandas' Timestamp) is ignored.
    return {TYPE_KEY: "datetime", VALUE_KEY: datetime.isoformat(value)}


def _encode_date(value: date) -> dict[str, Any]:
    return {TYPE_KEY: "date", VALUE_KEY: value.isoformat()}


def _encode_time(value: time) -> dict[str, Any]:
    return {TYPE_KEY: "time", VALUE_KEY: value.isoformat()}


def _encode_decimal(value: Decimal) -> dict[str, Any]:
    return {TYPE_KEY: "decimal", VALUE_KEY: str(value)}


def _encode_uuid(value: uuid.UUID) -> dict[str, Any]:
    return {TYPE_KEY: "uuid", VALUE_KEY: {"hex": value.hex}}


def _encode_bytes(value: bytes) -> dict[str, Any]:
    try:
        return {TYPE_KEY: "bytes", VALUE_KEY: value.decode("utf-8")}
    except UnicodeDecodeError:
        return {TYPE_KEY: "base64", VALUE_KEY: base64.b64encode(value).decode("ascii")}


# Checked in this order with isinstance, as kombu does: datetime is a date subclass.
_ENCODERS: tuple[tuple[type[Any], Callable[[Any], dict[str, Any]]], ...] = (
    (datetime, _encode_datetime),
    (date, _encode_date),
    (time, _encode_time),
    (Decimal, _encode_decimal),
    (uuid.UUID, _encode_uuid),
    (bytes, _encode_bytes),
)

# Encoders by exact type, for a fast path. Only extension types, whose instances cannot grow a
# __json__ method; uuid.UUID is a Python class, so it takes the slow path through encode_special.
EXACT_ENCODERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    kind: encoder for kind, encoder in _ENCODERS if kind is not uuid.UUID
}


def encode_tagged(value: object) -> dict[str, Any]:
    """Return the tag dict for a datetime, date, time, Decimal, UUID or bytes value.

    The result holds only plain JSON types, so it needs no further conversion.

    :raises UnsupportedTypeError: for any other value.
    """
    for kind, encoder in _ENCODERS:
        if isinstance(value, kind):
            return encoder(value)
    raise UnsupportedTypeError(value)


# The readers are kombu's, so a value kombu accepts is accepted here (an int for "decimal", the
# 5.3.0 form {"hex": ..., "version": ...} for "uuid") and one it refuses is refused.
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": lambda v: datetime.fromisoformat(v).date(),
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda v: uuid.UUID(**v),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v.encode("utf-8")),
}


def decode_tagged(name: Any, value: Any) -> Any:
    """Rebuild the value a ``{"__type__": name, "__value__": value}`` dict stands for.

    :raises MessageError: for an unknown tag or a value the tag cannot be read from.
    """
    decoder = _DECODERS.get(name) if type(name) is str else None
    if decoder is None:
        known = ", ".join(_DECODERS)
        raise MessageError(f"unsupported JSON __type__ {name!r} (celeriac-json reads {known})")
    try:
        return decoder(value)
    # ValueError includes binascii.Error and UnicodeEncodeError (a lone surrogate in a "bytes"
    # value); Decimal reports bad text as InvalidOperation, an ArithmeticError; a value of the
    # wrong JSON type fails with TypeError or AttributeError.
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        raise MessageError(f"invalid JSON {name!r} value {value!r}: {exc}") from exc


def object_hook(obj: dict[str, Any]) -> Any:
    """``json.loads`` object hook: replace tag dicts by the values they stand for."""
    if len(obj) == 2 and TYPE_KEY in obj and VALUE_KEY in obj:
        return decode_tagged(obj[TYPE_KEY], obj[VALUE_KEY])
    return obj


def revive(value: Any) -> Any:
    """Apply :func:`object_hook` to every dict of an already parsed document, innermost first.

    Visits dicts in the order the stdlib parser closes them, so both backends report the same
    first error. Containers are updated in place.
    """
    if type(value) is list:
        for index, item in enumerate(value):
            kind = type(item)
            if kind is dict or kind is list:
                value[index] = revive(item)
        return value
    if type(value) is not dict:
        return value
    for key, item in value.items():
        kind = type(item)
        if kind is dict or kind is list:
            value[key] = revive(item)  # replacing the value of an existing key is safe while iterating
    if len(value) == 2 and TYPE_KEY in value and VALUE_KEY in value:
        return decode_tagged(value[TYPE_KEY], value[VALUE_KEY])
    return value


def may_have_tags(data: bytes) -> bool:
    """Tell cheaply whether a document may hold tag dicts, so most messages skip the hook.

    Every letter of ``__type__`` is below U+0080, so an escaped spelling of the key needs ``\\u00``.
    """
    return b"__type__" in data or b"\\u00" in data
