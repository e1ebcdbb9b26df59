"""Typed task arguments: checked against the function's signature when sent, and attrs
classes carried as plain data (cattrs) so any serializer can encode them.

A wrong argument count or an unknown keyword fails in the caller, where the bug is, not
minutes later on a worker.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

# One private converter for task arguments (never cattrs' global one).
_CONVERTER = cattrs.Converter()


class TaskArguments:
    """The call signature of a task function (without the bound context of ``bind=True``)."""

    def __init__(self, fn: Callable[..., Any], *, bind: bool) -> None:
        try:
            signature = inspect.signature(fn, eval_str=True)  # "x: int", not "x: 'int'", in errors
        except Exception:  # annotations naming what is not importable here
            signature = inspect.signature(fn)
        parameters = list(signature.parameters.values())
        self.signature = signature.replace(parameters=parameters[1:] if bind else parameters)
        self.structured = _attrs_parameters(fn, self.signature)
        self._counts = _positional_counts(self.signature)

    def check(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Raise TypeError naming the task when the arguments do not fit its signature."""
        if not kwargs and self._counts is not None and len(args) in self._counts:
            return  # what binding would find, without building a BoundArguments per call
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {name}{self.signature}: {exc}") from None

    def unstructure(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """attrs instances among the arguments become plain dicts for the wire."""
        if not self.structured:
            return args, dict(kwargs)
        return (
            tuple(_CONVERTER.unstructure(a) if attrs.has(type(a)) else a for a in args),
            {k: _CONVERTER.unstructure(v) if attrs.has(type(v)) else v for k, v in kwargs.items()},
        )

    def structure(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Plain dicts for parameters annotated with attrs classes become instances again."""
        if not self.structured:
            return args, dict(kwargs)
        bound = self.signature.bind(*args, **kwargs)
        for parameter, cls in self.structured.items():
            value = bound.arguments.get(parameter)
            if isinstance(value, Mapping):
                bound.arguments[parameter] = _CONVERTER.structure(value, cls)
        return bound.args, bound.kwargs


def _positional_counts(signature: inspect.Signature) -> range | None:
    """How many positional arguments alone fit the signature; None when that takes binding
    to find out (``*args``, or a keyword-only parameter without a default)."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = 0
    count = 0
    for parameter in signature.parameters.values():
        kind = parameter.kind
        if kind in positional:
            count += 1
            required += parameter.default is inspect.Parameter.empty
        elif kind is inspect.Parameter.VAR_KEYWORD:
            continue
        elif kind is inspect.Parameter.VAR_POSITIONAL or parameter.default is inspect.Parameter.empty:
            return None
    return range(required, count + 1)


def _attrs_parameters(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, type[Any]]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: leave arguments as they are
        return {}
    return {
        name: hint
        for name, hint in hints.items()
        if name in signature.parameters and isinstance(hint, type) and attrs.has(hint)
    }
