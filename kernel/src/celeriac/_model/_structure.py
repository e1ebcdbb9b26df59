"""A strict cattrs converter for configuration, and errors that explain themselves.

cattrs' default converter coerces (``str(5)``, ``bool("false")``); configuration must not,
so scalar hooks here check types instead. Errors are rewritten to name the source file or
variable, the dotted key, the value given (secrets masked) and the type expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TypeVar

import cattrs
from cattrs.errors import ClassValidationError
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.errors import IterableValidationError

from celeriac._model.errors import ConfigError
from celeriac._model.redaction import redact
from celeriac._model.routing import TaskRoute

T = TypeVar("T")


def _strict(kind: type[Any], accepted: tuple[type[Any], ...]) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {kind.__name__}")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}")
        return kind(value)

    return hook


def make_config_converter() -> cattrs.Converter:
    """A converter that rejects unknown keys and values of the wrong type."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, (str,)))
    converter.register_structure_hook(int, _strict(int, (int,)))
    converter.register_structure_hook(float, _strict(float, (int, float)))
    converter.register_structure_hook(bool, _strict(bool, (bool,)))

    def task_route(value: Any, _: Any) -> str | TaskRoute:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            route: TaskRoute = converter.structure(value, TaskRoute)
            return route
        raise TypeError("expected a queue name or a table of queue, exchange, routing_key")

    converter.register_structure_hook(str | TaskRoute, task_route)
    return converter


_CONVERTER = make_config_converter()


def structure_or_explain(data: Any, cls: type[T], prefix: str, provenance: Mapping[str, str]) -> T:
    """Structure ``data`` as ``cls``; on failure raise one :class:`ConfigError` listing every problem."""
    try:
        return _CONVERTER.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        problems = list(_explain(exc, prefix, data, provenance))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration at {prefix or 'top level'}: {exc}") from None


def _explain(exc: BaseException, path: str, value: Any, provenance: Mapping[str, str]) -> list[str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        known = sorted(a.name for a in getattr(exc.cl, "__attrs_attrs__", ()))
        return [
            f"{_source(provenance, _join(path, key))}: unknown key {_join(path, key)!r}"
            f" = {shown(key, _child(value, key))!r} (expected one of: {', '.join(known)})"
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, cattrs.BaseValidationError):
        problems: list[str] = []
        for sub in exc.exceptions:
            note = _note_of(sub)
            key = _join(path, str(note)) if note is not None else path
            sub_value = _child(value, note) if note is not None else value
            problems.extend(_explain(sub, key, sub_value, provenance))
        return problems
    if isinstance(exc, KeyError):  # cattrs reports a missing required key as KeyError('key')
        return [f"{_source(provenance, path)}: key {path!r} is required"]
    expected = str(exc) or type(exc).__name__
    return [f"{_source(provenance, path)}: key {path!r} = {shown(path, value)!r}: {expected}"]


def shown(key: str, value: Any) -> Any:
    """``value`` as an error message may print it: masked when ``key`` names a secret, and
    with secret-looking keys and URL passwords masked inside (``redact``'s rules)."""
    name = str(key).rpartition(".")[2]
    return redact({name: value})[name]


def _note_of(exc: BaseException) -> Any:
    for note in getattr(exc, "__notes__", []):
        name = getattr(note, "name", None)
        if name is not None:
            return name
        for attr in ("key", "index"):
            found = getattr(note, attr, None)
            if found is not None:
                return found
    return None


def _child(value: Any, key: Any) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _source(provenance: Mapping[str, str], key: str) -> str:
    while key:
        if key in provenance:
            return provenance[key]
        key = key.rpartition(".")[0]
    return "config"
