"""The orjson codec: faster, and giving exactly the results of :class:`StdlibCodec`.

orjson differs from the json module in ways that would change the wire form or the decoded
values, so it never sees a value it would treat differently:

* it writes ``datetime``, ``date``, ``time``, ``UUID``, enums and dataclasses natively (the UUID
  as a plain string, with no option to hand it back), where kombu wraps or rejects them;
* it rejects non-``str`` dict keys, which the json module turns into strings;
* it writes NaN and infinities as ``null``; it cannot write integers beyond 64 bits;
* it reads integers beyond 64 bits as floats (silently losing digits), and rejects ``NaN``,
  ``Infinity``, ``1e400`` and lone surrogate escapes, which the json module accepts.

So values are first rebuilt from plain ``dict``/``list``/``str``/``int``/``float``/``bool``/
``None`` with kombu's tags applied (:func:`to_plain`, mirroring the order of checks in the json
module's C encoder), and anything orjson would get wrong, or any failure, is handed to the
stdlib codec, which also produces the error. On decode, documents with a run of 19 digits skip
orjson, as do documents it rejects.
"""

from __future__ import annotations

from math import isfinite
from typing import Any
from typing import Final
from typing import final

import orjson

from celeriac_json._stdlib import StdlibCodec
from celeriac_json._tags import EXACT_ENCODERS
from celeriac_json._tags import encode_tagged
from celeriac_json._tags import may_have_tags
from celeriac_json._tags import revive

_NATIVE: Final = frozenset((str, int, bool, type(None)))
# Any integer orjson cannot read exactly (beyond -2**63 .. 2**64-1) has at least 19 digits.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER: Final = b"0" * 19


class _FallbackError(Exception):
    """orjson would write this value differently from the json module."""


@final
class OrjsonCodec:
    """JSON through orjson, with the stdlib codec's exact results."""

    name: Final = "orjson"

    def __init__(self, fallback: StdlibCodec) -> None:
        self._fallback = fallback

    def dumps(self, value: Any) -> bytes:
        try:
            return orjson.dumps(to_plain(value))
        # Deliberately broad: besides _FallbackError and orjson's own refusals (integers beyond
        # 64 bits, lone surrogates, nesting past 255), this catches unsupported types, cycles and
        # failing __json__() methods. The stdlib codec then encodes the value or raises exactly
        # the error it always raises, so the two codecs cannot disagree on failures.
        except Exception:
            return self._fallback.dumps(value)

    def loads(self, data: bytes) -> Any:
        if type(data) is not bytes:
            data = bytes(data)
        if _LONG_NUMBER not in data.translate(_DIGITS_TO_ZERO):
            try:
                value = orjson.loads(data)
                return revive(value) if may_have_tags(data) else value
            except (orjson.JSONDecodeError, RecursionError):
                pass  # the stdlib codec reads what orjson refuses, or explains why nobody can
        return self._fallback.loads(data)


def to_plain(value: Any) -> Any:
    """Return ``value`` as plain JSON types, as the json module with kombu's ``default`` sees it.

    :raises _FallbackError: where orjson's output would differ (non-finite floats, odd keys).
    """
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is list or kind is tuple:
        return [item if type(item) in _NATIVE else to_plain(item) for item in value]
    if kind is dict:
        return {
            key if type(key) is str else _plain_key(key): item if type(item) in _NATIVE else to_plain(item)
            for key, item in value.items()
        }
    if kind is float:
        if isfinite(value):
            return value
        raise _FallbackError
    encoder = EXACT_ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value)
    return _plain_subclass(value)


def _plain_subclass(value: Any) -> Any:
    # The json module tests str, int, float, list/tuple, dict with isinstance, in this order,
    # and calls ``default`` for the rest; IntEnum and StrEnum members go out as their values.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return to_plain(float.__float__(value))
    if isinstance(value, (list, tuple)):  # a tuple: faster than a union type
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain_key(key): to_plain(item) for key, item in value.items()}
    reducer = getattr(value, "__json__", None)
    if reducer is not None:
        return to_plain(reducer())
    return encode_tagged(value)


def _plain_key(key: Any) -> str:
    # The json module's rules for keys: str as is, float as repr, bool and None as their JSON
    # literals, int as decimal; other keys are an error it reports.
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, float):
        if isfinite(key):
            return float.__repr__(key)
        raise _FallbackError
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise _FallbackError
