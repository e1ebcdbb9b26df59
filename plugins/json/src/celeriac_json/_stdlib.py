"""The standard-library codec: the reference behaviour that the orjson codec reproduces.

Output is compact UTF-8 (``separators=(",", ":")``, ``ensure_ascii=False``), which is what orjson
writes too; kombu writes ``", "``/``": "`` and ``\\uXXXX`` escapes, and each side reads the other's.
Non-finite floats are written as ``NaN``/``Infinity``/``-Infinity`` and read back, as Python's
json module and kombu do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from typing import Final
from typing import Protocol
from typing import final

from celeriac.plugin import MessageError
from celeriac.plugin import SerializationError
from celeriac_json._tags import UnsupportedTypeError
from celeriac_json._tags import encode_special
from celeriac_json._tags import may_have_tags
from celeriac_json._tags import object_hook

_SUPPORTED = (
    "dict, list, tuple, str, int, float, bool, None, datetime, date, time, Decimal, UUID, bytes,"
    " or an object with a __json__() method"
)


class Codec(Protocol):
    """One way of turning values into JSON bytes and back; every codec gives the same results."""

    @property
    def name(self) -> str: ...

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@final
class StdlibCodec:
    """JSON through :mod:`json`, with kombu's type tags."""

    name: Final = "stdlib"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=encode_special)
        self._ascii_encoder = json.JSONEncoder(separators=(",", ":"), default=encode_special)
        self._decoder = json.JSONDecoder()
        self._tag_decoder = json.JSONDecoder(object_hook=object_hook)

    def dumps(self, value: Any) -> bytes:
        try:
            text = self._encoder.encode(value)
        except UnsupportedTypeError as exc:
            raise unsupported_error(value, exc.value) from None
        except RecursionError as exc:
            raise SerializationError("cannot encode value as JSON: it is nested too deeply") from exc
        except (TypeError, ValueError) as exc:
            where = _locate(value, _has_bad_key) if str(exc).startswith("keys must be") else ""
            raise SerializationError(f"cannot encode value as JSON{where}: {exc}") from exc
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (from os.fsdecode, say) has no UTF-8 form; kombu escapes it as
            # \udXXX, which is valid JSON, and so do we, for the whole document.
            return self._ascii_encoder.encode(value).encode("ascii")

    def loads(self, data: bytes) -> Any:
        if type(data) is not bytes:
            data = bytes(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageError(f"invalid JSON: the body is not UTF-8 ({exc})") from exc
        decoder = self._tag_decoder if may_have_tags(data) else self._decoder
        try:
            return decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise MessageError(f"invalid JSON: {exc}") from exc
        except RecursionError as exc:
            raise MessageError("invalid JSON: the document is nested too deeply") from exc


def unsupported_error(root: Any, value: object) -> SerializationError:
    """Build the error for a value JSON cannot carry, saying where in ``root`` it sits."""
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(value, set | frozenset):
        hint = "JSON has no set type (kombu refuses sets too); send a list or a tuple instead"
    else:
        hint = f"JSON can carry {_SUPPORTED}"
    where = _locate(root, lambda node: node is value)
    return SerializationError(f"cannot encode an object of type {name} as JSON{where}: {hint}")


def _has_bad_key(node: object) -> bool:
    return isinstance(node, dict) and any(
        not isinstance(key, str | int | float) and key is not None for key in node
    )


def _locate(root: Any, match: Callable[[object], bool]) -> str:
    """Return ``" at value[1]['when']"`` for the first node that matches, or ``""``.

    Runs only when encoding has already failed, so its cost does not matter; it walks the
    containers the encoder walks, and skips what a ``__json__()`` method or a cycle would add.
    """
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "value")]
    while stack:
        node, path = stack.pop()
        if match(node):
            return f" at {path}"
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            children = [(item, f"{path}[{key!r}]") for key, item in node.items()]
        elif isinstance(node, list | tuple):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    return ""
