"""The task message: Celery's protocol 2, as value objects.

A message has headers (what to run and its lineage), a body ``[args, kwargs, embed]`` and
properties (correlation id, reply queue, priority). Speaking this layout on the wire lets a
Celery client and a celeriac worker (and the reverse) share a broker. Protocol 1 messages,
still sent by several non-Python clients, are read and turned into the same objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from attrs import field
from attrs import frozen

from celeriac._model.errors import MessageError

#: Header keys Celery 5 emits, in its order; anything else in a header table is a custom header.
KNOWN_HEADERS = (
    "lang",
    "task",
    "id",
    "shadow",
    "eta",
    "expires",
    "group",
    "group_index",
    "retries",
    "timelimit",
    "root_id",
    "parent_id",
    "argsrepr",
    "kwargsrepr",
    "origin",
    "ignore_result",
    "replaced_task_nesting",
    "stamped_headers",
    "stamps",
)
_TRANSPORT_HEADERS = frozenset({"compression", "redelivered"})


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


@frozen(kw_only=True)
class Embed:
    """Workflow parts carried with a task: what runs after it, on error, and in a chord."""

    callbacks: tuple[dict[str, Any], ...] | None = None
    errbacks: tuple[dict[str, Any], ...] | None = None
    chain: tuple[dict[str, Any], ...] | None = None
    chord: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        """No workflow part: the common case, checked on the hot path."""
        return not (self.callbacks or self.errbacks or self.chain or self.chord)

    def to_wire(self) -> dict[str, Any]:
        def seq(value: tuple[dict[str, Any], ...] | None) -> list[dict[str, Any]] | None:
            return list(value) if value is not None else None

        return {
            "callbacks": seq(self.callbacks),
            "errbacks": seq(self.errbacks),
            "chain": seq(self.chain),
            "chord": self.chord,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> Embed:
        if not data:
            return cls()

        def seq(key: str) -> tuple[dict[str, Any], ...] | None:
            value = data.get(key)
            return tuple(value) if value is not None else None

        return cls(
            callbacks=seq("callbacks"),
            errbacks=seq("errbacks"),
            chain=seq("chain"),
            chord=data.get("chord"),
        )


@frozen(kw_only=True)
class TaskMessage:
    """One task invocation, as protocol 2 lays it out."""

    id: str
    task: str
    args: tuple[Any, ...] = field(default=(), converter=_tuple)
    kwargs: Mapping[str, Any] = field(factory=dict)
    embed: Embed = field(factory=Embed)
    lang: str = "py"
    shadow: str | None = None
    eta: dt.datetime | None = None
    expires: dt.datetime | None = None
    group: str | None = None
    group_index: int | None = None
    retries: int = 0
    timelimit: tuple[float | None, float | None] = (None, None)
    root_id: str | None = None
    parent_id: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    origin: str | None = None
    ignore_result: bool = False
    replaced_task_nesting: int = 0
    stamped_headers: tuple[str, ...] | None = None
    stamps: Mapping[str, Any] = field(factory=dict)
    #: Custom headers from ``apply_async(headers=...)``, kept as they came.
    extra_headers: Mapping[str, Any] = field(factory=dict)
    correlation_id: str | None = None
    reply_to: str | None = None
    priority: int | None = None

    def headers(self) -> dict[str, Any]:
        """The header table in Celery 5's layout, custom headers merged in."""
        headers: dict[str, Any] = {
            "lang": self.lang,
            "task": self.task,
            "id": self.id,
            "shadow": self.shadow,
            "eta": _iso(self.eta),
            "expires": _iso(self.expires),
            "group": self.group,
            "group_index": self.group_index,
            "retries": self.retries,
            "timelimit": list(self.timelimit),
            "root_id": self.root_id or self.id,
            "parent_id": self.parent_id,
            "argsrepr": self.argsrepr if self.argsrepr is not None else repr(self.args),
            "kwargsrepr": self.kwargsrepr if self.kwargsrepr is not None else repr(dict(self.kwargs)),
            "origin": self.origin,
            "ignore_result": self.ignore_result,
            "replaced_task_nesting": self.replaced_task_nesting,
            "stamped_headers": list(self.stamped_headers) if self.stamped_headers is not None else None,
            "stamps": dict(self.stamps),
        }
        for key, value in self.extra_headers.items():
            headers.setdefault(key, value)
        return headers

    def body(self) -> list[Any]:
        """The protocol 2 body, ready for a serializer: ``[args, kwargs, embed]``."""
        return [list(self.args), dict(self.kwargs), self.embed.to_wire()]

    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "correlation_id": self.correlation_id or self.id,
            "reply_to": self.reply_to or "",
            "delivery_mode": 2,
        }
        if self.priority is not None:
            props["priority"] = self.priority
        return props

    @classmethod
    def from_protocol2(
        cls, headers: Mapping[str, Any], body: Any, properties: Mapping[str, Any]
    ) -> TaskMessage:
        """Build from a protocol 2 header table, decoded body and properties."""
        if not isinstance(body, list | tuple) or len(body) != 3:
            raise MessageError(f"protocol 2 body must be [args, kwargs, embed], got {_short(body)}")
        args, kwargs, embed = body
        _check_args(args, kwargs)
        try:
            return cls(
                id=_required(headers, "id"),
                task=_required(headers, "task"),
                args=args,
                kwargs=kwargs,
                embed=Embed.from_wire(embed),
                lang=headers.get("lang") or "py",
                shadow=headers.get("shadow"),
                eta=parse_datetime(headers.get("eta"), "eta"),
                expires=parse_datetime(headers.get("expires"), "expires"),
                group=headers.get("group"),
                group_index=headers.get("group_index"),
                retries=int(headers.get("retries") or 0),
                timelimit=_timelimit(headers.get("timelimit")),
                root_id=headers.get("root_id"),
                parent_id=headers.get("parent_id"),
                argsrepr=headers.get("argsrepr"),
                kwargsrepr=headers.get("kwargsrepr"),
                origin=headers.get("origin"),
                ignore_result=bool(headers.get("ignore_result", False)),
                replaced_task_nesting=int(headers.get("replaced_task_nesting") or 0),
                stamped_headers=_optional_tuple(headers.get("stamped_headers")),
                stamps=headers.get("stamps") or {},
                extra_headers={
                    k: v for k, v in headers.items() if k not in KNOWN_HEADERS and k not in _TRANSPORT_HEADERS
                },
                correlation_id=properties.get("correlation_id"),
                reply_to=properties.get("reply_to") or None,
                priority=properties.get("priority"),
            )
        except (TypeError, ValueError) as exc:
            raise MessageError(f"malformed protocol 2 headers: {exc}") from exc

    @classmethod
    def from_protocol1(
        cls, body: Any, properties: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> TaskMessage:
        """Build from a protocol 1 body: one dict holding task, id, args, kwargs and options.

        :param headers: the message's headers (without ``task``), to say what is wrong when
            the body is no protocol 1 task either.
        """
        if not isinstance(body, Mapping) or "task" not in body:
            what = "no headers" if not headers else f"no 'task' header (headers: {_short(sorted(headers))})"
            raise MessageError(
                f"not a task message: it has {what}, and its body is not a protocol 1 task "
                f"(a mapping with 'task' and 'id') either: got {_short(body)}"
            )
        args = body.get("args") or []
        kwargs = body.get("kwargs") or {}
        _check_args(args, kwargs)
        chord = body.get("chord")
        try:
            return cls(
                id=_required(body, "id", "field"),
                task=_required(body, "task", "field"),
                args=args,
                kwargs=kwargs,
                embed=Embed(
                    callbacks=_optional_tuple(body.get("callbacks")),
                    errbacks=_optional_tuple(body.get("errbacks")),
                    chord=chord,
                ),
                eta=parse_datetime(body.get("eta"), "eta"),
                expires=parse_datetime(body.get("expires"), "expires"),
                group=body.get("taskset") or body.get("group"),
                retries=int(body.get("retries") or 0),
                timelimit=_timelimit(body.get("timelimit")),
                correlation_id=properties.get("correlation_id"),
                reply_to=properties.get("reply_to") or None,
                priority=properties.get("priority"),
            )
        except (TypeError, ValueError) as exc:
            raise MessageError(f"malformed protocol 1 message: {exc}") from exc


def parse_datetime(value: Any, name: str) -> dt.datetime | None:
    """Read an ISO-8601 header; naive times are taken as UTC, as Celery's ``utc=True`` does."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise MessageError(f"header {name!r} is not an ISO-8601 time: {value!r}") from exc
    else:
        raise MessageError(f"header {name!r} must be an ISO-8601 string, got {_short(value)}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _required(data: Mapping[str, Any], key: str, where: str = "header") -> str:
    """``data[key]``, a non-empty string; the error says whether it is missing or of a wrong type."""
    value = data.get(key)
    if key not in data or value is None:
        raise MessageError(f"message has no {key!r} {where}")
    if not isinstance(value, str):
        raise MessageError(f"{where} {key!r} must be a string, got {_short(value)}")
    if not value:
        raise MessageError(f"{where} {key!r} is empty")
    return value


def _check_args(args: Any, kwargs: Any) -> None:
    if not isinstance(args, list | tuple):
        raise MessageError(f"task args must be a list, got {_short(args)}")
    if not isinstance(kwargs, Mapping):
        raise MessageError(f"task kwargs must be a mapping, got {_short(kwargs)}")


def _timelimit(value: Any) -> tuple[float | None, float | None]:
    if not value:
        return (None, None)
    hard, soft = [*list(value), None, None][:2]
    return (hard, soft)


def _optional_tuple(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if value is not None else None


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"
