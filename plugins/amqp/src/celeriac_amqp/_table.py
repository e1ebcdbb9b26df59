"""AMQP 0-9-1 field tables as RabbitMQ types them, encoded and decoded without pika.

Celery (py-amqp) sends floats (``timelimit``, event timestamps) as ``d`` doubles, and
pika 1.3/1.4 refuses to encode a float and truncates a decoded double to an integer. So
header tables, in both directions, go through this codec instead of ``pika.data``.

Types read: RabbitMQ's ``t b B s u I i l f d D S x A T F V``, plus ``U`` and ``L``, which
py-amqp and Qpid write. Types written: ``S`` (str), ``x`` (bytes), ``t`` (bool), ``I`` or
``l`` (int), ``d`` (float), ``D`` (Decimal), ``T`` (datetime, whole seconds), ``F`` (dict),
``A`` (list or tuple), ``V`` (None), as py-amqp writes them except that 64-bit ints are
``l`` (RabbitMQ's signed long-long) and bytes are ``x``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import struct
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

_INT32_RANGE = (-(2**31), 2**31 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_UINT = struct.Struct(">I").unpack_from
_INT32 = struct.Struct(">i").unpack_from
_INT64 = struct.Struct(">q").unpack_from


class FieldTableError(ValueError):
    """A value that has no AMQP field type, or bytes that are no field table."""


def encode_table(table: Mapping[str, Any]) -> bytes:
    """The table as AMQP bytes: a 32-bit length, then ``short-string key, typed value`` pairs."""
    pieces: list[bytes] = []
    _table(pieces, table, "")
    return b"".join(pieces)


def decode_table(data: bytes | memoryview, offset: int = 0) -> tuple[dict[str, Any], int]:
    """The table starting at ``offset`` and the offset just after it."""
    try:
        (size,) = _UINT(data, offset)
        offset += 4
        end = offset + size
        table: dict[str, Any] = {}
        keys = _KEYS_READ
        while offset < end:
            start = offset + 1
            offset = start + data[offset]
            raw = bytes(data[start:offset])
            key = keys.get(raw) or _new_key(raw, offset - start)
            table[key], offset = _read_value(data, offset)
    except (struct.error, IndexError) as exc:
        raise FieldTableError(f"truncated AMQP field table: {exc}") from None
    if offset != end:
        raise FieldTableError("AMQP field table overruns its declared length")
    return table, offset


# Every consumed message's headers are read by decode_table and the two below: a key seen
# before is looked up rather than decoded, and the types a task message's headers use (long
# strings, void, booleans, ints) are read in place, the rest by _value.


def _new_key(raw: bytes, length: int) -> str:
    """A key not seen before (``length`` the bytes it should have), decoded and kept."""
    if len(raw) != length:
        raise FieldTableError("truncated AMQP short string")
    key = raw.decode("utf-8", "surrogateescape")
    if len(_KEYS_READ) < CACHED:
        _KEYS_READ[raw] = key
    return key


def _read_value(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    kind = data[offset]
    if kind == 83:  # S
        return _long_string(data, offset + 1)
    if kind == 86:  # V
        return None, offset + 1
    if kind == 116:  # t
        return data[offset + 1] != 0, offset + 2
    if kind == 73:  # I
        return _INT32(data, offset + 1)[0], offset + 5
    if kind == 108:  # l
        return _INT64(data, offset + 1)[0], offset + 9
    if kind == 70:  # F, straight back to decode_table: two stack frames a level, as before
        return decode_table(data, offset + 1)
    return _value(data, offset)


def decode_short_string(data: bytes | memoryview, offset: int) -> tuple[str, int]:
    length = data[offset]
    offset += 1
    raw = bytes(data[offset : offset + length])
    if len(raw) != length:
        raise FieldTableError("truncated AMQP short string")
    return raw.decode("utf-8", "surrogateescape"), offset + length


def encode_short_string(pieces: list[bytes], value: str, what: str) -> None:
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise FieldTableError(f"{what} is {len(raw)} bytes long; AMQP short strings hold at most 255")
    pieces.append(bytes((len(raw),)))
    pieces.append(raw)


# --- encoding ---------------------------------------------------------------------------
# On the publishing hot path (one table per message): the common types are tested by exact
# type first, keys are encoded once and kept, and a value's path is spelled out only for an
# error message.

_LONG_STRING = struct.Struct(">cI").pack
_INT = struct.Struct(">ci").pack
_LONG = struct.Struct(">cq").pack
_DOUBLE = struct.Struct(">cd").pack
_SIZE = struct.Struct(">I").pack


#: Encoded header keys, and whole ``key, value`` pairs whose value repeats from one message
#: to the next (most of a task message's headers: its name, origin, None, 0, False, an empty
#: dict, ``timelimit`` ``[None, None]``); each at most CACHED entries. A key's string values
#: are kept only for its first PER_KEY values and when short: ids never repeat.
_KEYS: dict[str, bytes] = {}
_KEYS_READ: dict[bytes, str] = {}  # the decoder's: keys as read, decoded once
_PAIRS: dict[tuple[str, object, type], bytes] = {}
_STRINGS_KEPT: dict[str, int] = {}
CACHED = 4096
PER_KEY = 32
_SHORT = 100
#: Elements a list (up to four of them) may have for the pair to be kept: hashable, and
#: the key holds their types too, since True == 1 as dict keys. No floats: 0.0 == -0.0.
_FLAT = frozenset((type(None), str, int, bool))


def _key(key: str, path: str) -> bytes:
    """A header key as a short string; header names repeat, so each is encoded once."""
    encoded = _KEYS.get(key)
    if encoded is not None:
        return encoded
    if not isinstance(key, str):
        raise FieldTableError(f"header key {path}{key!r} is not a string")
    raw = key.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise FieldTableError(
            f"header key {path}{key!r}: {len(raw)} bytes long; AMQP short strings hold at most 255"
        )
    encoded = bytes((len(raw),)) + raw
    if len(_KEYS) < CACHED:
        _KEYS[key] = encoded
    return encoded


def _table(pieces: list[bytes], table: Mapping[str, Any], path: str) -> None:
    body: list[bytes] = []
    append = body.append
    for key, value in table.items():
        kind = type(value)
        if kind is str or value is None or kind is int or kind is bool:
            # The type is part of the cache key: True == 1 and False == 0 as dict keys.
            kept_as: tuple[str, object, type] | None = (key, value, kind)
        elif kind is list or kind is tuple or kind is dict:
            shape = _shape(value, kind)
            kept_as = None if shape is None else (key, shape, kind)
        else:
            append(_key(key, path))
            _item(body, value, path, key)
            continue
        pair = None if kept_as is None else _PAIRS.get(kept_as)
        append(pair if pair is not None else _pair(key, value, path, kept_as))
    data = b"".join(body)
    pieces.append(_SIZE(len(data)))
    pieces.append(data)


def _shape(value: Any, kind: type) -> tuple[Any, ...] | None:
    """What identifies a composite value in the pair cache: its elements with their types,
    for an empty dict and a short list of scalars; None for any other."""
    if kind is dict:
        return () if not value else None
    if len(value) > 4:
        return None
    types = tuple(map(type, value))
    return (tuple(value), types) if _FLAT.issuperset(types) else None


def _pair(key: str, value: Any, path: str, kept_as: tuple[str, object, type] | None) -> bytes:
    """One ``key, value`` pair encoded, and kept under ``kept_as`` (None: never) when its
    value may well repeat: a string only among the key's first PER_KEY short ones."""
    one = [_key(key, path)]
    _item(one, value, path, key)
    pair = b"".join(one)
    if kept_as is not None and len(_PAIRS) < CACHED:
        if type(value) is str:
            kept = _STRINGS_KEPT.get(key, 0)
            if kept >= PER_KEY or len(value) > _SHORT:
                return pair
            _STRINGS_KEPT[key] = kept + 1
        _PAIRS[kept_as] = pair
    return pair


def _item(pieces: list[bytes], value: Any, path: str, key: str | int) -> None:
    # bool before int, as bool is an int subclass.
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        pieces.append(_LONG_STRING(b"S", len(raw)))
        pieces.append(raw)
    elif isinstance(value, bool):
        pieces.append(b"t\x01" if value else b"t\x00")
    elif isinstance(value, int):
        if _INT32_RANGE[0] <= value <= _INT32_RANGE[1]:
            pieces.append(_INT(b"I", value))
        elif _INT64_RANGE[0] <= value <= _INT64_RANGE[1]:
            pieces.append(_LONG(b"l", value))
        else:
            raise FieldTableError(f"header {_path(path, key)}: {value} does not fit in 64 bits")
    elif isinstance(value, float):
        pieces.append(_DOUBLE(b"d", value))
    elif value is None:
        pieces.append(b"V")
    else:
        _composite(pieces, value, _path(path, key))


def _path(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}{key}"


def _composite(pieces: list[bytes], value: Any, path: str) -> None:
    kind = type(value)
    # A Mapping check goes through the ABC machinery: exact lists and tuples skip it.
    if kind is not list and kind is not tuple and isinstance(value, Mapping):
        pieces.append(b"F")
        _table(pieces, value, f"{path}.")
    elif isinstance(value, list | tuple):
        body: list[bytes] = []
        for index, element in enumerate(value):
            _item(body, element, path, index)
        data = b"".join(body)
        pieces.append(_LONG_STRING(b"A", len(data)))
        pieces.append(data)
    elif isinstance(value, bytes | bytearray):
        pieces.append(_LONG_STRING(b"x", len(value)))
        pieces.append(bytes(value))
    elif isinstance(value, decimal.Decimal):
        pieces.append(_decimal(value, path))
    elif isinstance(value, dt.datetime):
        pieces.append(struct.pack(">cQ", b"T", calendar.timegm(value.utctimetuple())))
    else:
        raise FieldTableError(
            f"header {path} is a {type(value).__name__}, which has no AMQP field type "
            "(use str, bytes, bool, int, float, Decimal, datetime, None, list or dict)"
        )


def _decimal(value: decimal.Decimal, path: str) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise FieldTableError(f"header {path}: {value} is not a finite decimal")
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > 0:
        unscaled, exponent = unscaled * 10**exponent, 0
    if -exponent > 255 or not _INT32_RANGE[0] <= unscaled <= _INT32_RANGE[1]:
        raise FieldTableError(f"header {path}: {value} does not fit an AMQP decimal (scale 0-255, 32-bit)")
    return struct.pack(">cBi", b"D", -exponent, unscaled)


# --- decoding ---------------------------------------------------------------------------


def _fixed(fmt: str) -> Callable[[bytes | memoryview, int], tuple[Any, int]]:
    unpack = struct.Struct(fmt)

    def read(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
        return unpack.unpack_from(data, offset)[0], offset + unpack.size

    return read


def _long_string(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    raw, offset = _byte_array(data, offset)
    try:
        return raw.decode("utf-8"), offset
    except UnicodeDecodeError:
        return raw, offset  # not text: keep the bytes rather than guess


def _byte_array(data: bytes | memoryview, offset: int) -> tuple[bytes, int]:
    (length,) = _UINT(data, offset)
    offset += 4
    raw = bytes(data[offset : offset + length])
    if len(raw) != length:
        raise FieldTableError("truncated AMQP long string")
    return raw, offset + length


def _array(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    (length,) = struct.unpack_from(">I", data, offset)
    offset += 4
    end = offset + length
    values: list[Any] = []
    while offset < end:
        value, offset = _value(data, offset)
        values.append(value)
    return values, offset


def _decimal_value(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    scale, unscaled = struct.unpack_from(">Bi", data, offset)
    return decimal.Decimal(unscaled).scaleb(-scale), offset + 5


def _timestamp(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    (seconds,) = struct.unpack_from(">Q", data, offset)
    return dt.datetime.fromtimestamp(seconds, dt.UTC), offset + 8


def _bool(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    return data[offset] != 0, offset + 1


def _void(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    return None, offset


_READERS: dict[int, Callable[[bytes | memoryview, int], tuple[Any, int]]] = {
    ord("t"): _bool,
    ord("b"): _fixed(">b"),
    ord("B"): _fixed(">B"),
    ord("s"): _fixed(">h"),  # RabbitMQ's signed short (the errata; not a short string)
    ord("U"): _fixed(">h"),
    ord("u"): _fixed(">H"),
    ord("I"): _fixed(">i"),
    ord("i"): _fixed(">I"),
    ord("l"): _fixed(">q"),
    ord("L"): _fixed(">q"),  # py-amqp writes signed 64-bit ints with this letter
    ord("f"): _fixed(">f"),
    ord("d"): _fixed(">d"),
    ord("D"): _decimal_value,
    ord("S"): _long_string,
    ord("x"): _byte_array,
    ord("A"): _array,
    ord("T"): _timestamp,
    ord("F"): decode_table,
    ord("V"): _void,
}


def _value(data: bytes | memoryview, offset: int) -> tuple[Any, int]:
    kind = data[offset]
    reader = _READERS.get(kind)
    if reader is None:
        raise FieldTableError(f"unknown AMQP field type {chr(kind)!r} at byte {offset}")
    return reader(data, offset + 1)
