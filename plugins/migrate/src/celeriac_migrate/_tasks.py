"""Where tasks go and how they run: ``task_routes``, ``task_queues``, ``task_annotations``, task defaults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from celeriac_migrate._context import Context
from celeriac_migrate._context import seconds

#: Celery's task-wide settings that are a ``[task_defaults]`` key.
TASK_DEFAULTS = {
    "task_time_limit": "time_limit",
    "task_soft_time_limit": "soft_time_limit",
    "task_track_started": "track_started",
    "task_ignore_result": "ignore_result",
    "task_default_rate_limit": "rate_limit",
    "task_acks_on_failure_or_timeout": "acks_on_failure_or_timeout",
    "task_reject_on_worker_lost": "reject_on_worker_lost",
}

#: Task attributes an annotation may set, as ``[tasks."name"]`` keys, with their conversion.
_OPTIONS: dict[str, Any] = {
    "rate_limit": str,
    "time_limit": seconds,
    "soft_time_limit": seconds,
    "acks_late": bool,
    "max_retries": lambda value: -1 if value is None else int(value),
    "default_retry_delay": seconds,
    "ignore_result": bool,
    "serializer": str,
    "track_started": bool,
    "expires": seconds,
    "priority": int,
    "queue": str,
    "exchange": str,
    "routing_key": str,
    "retry_backoff": lambda value: int(value) if isinstance(value, bool) else seconds(value),
    "retry_backoff_max": seconds,
    "retry_jitter": bool,
    "acks_on_failure_or_timeout": bool,
    "reject_on_worker_lost": bool,
}
_WHERE = ("queue", "exchange", "routing_key")
_GLOB = re.compile(r"[*?\[]")


def task_default(context: Context, value: Any) -> None:
    """A rule for the settings in :data:`TASK_DEFAULTS`."""
    option = TASK_DEFAULTS[context.current]
    context.put(("task_defaults", option), _OPTIONS[option](value))


def annotate(context: Context) -> None:
    """``task_annotations``: ``'*'`` becomes ``[task_defaults]``, a task name ``[tasks."name"]``."""
    context.current = "task_annotations"
    for annotation in _each(context.settings.get("task_annotations")):
        if not isinstance(annotation, dict):
            context.skip(
                "task_annotations",
                "an annotation object or class runs code per task: write its options as "
                '[tasks."name"] tables',
                annotation,
            )
            continue
        for name, options in annotation.items():
            for option, value in dict(options).items():
                _annotate(context, str(name), str(option), value)


def _annotate(context: Context, name: str, option: str, value: Any) -> None:
    context.current = f"task_annotations[{name!r}]"
    setting = f"task_annotations[{name!r}][{option!r}]"
    convert = _OPTIONS.get(option)
    if convert is None:
        why = "no celeriac task option of this name"
        if callable(value):
            why = "a handler in configuration: override the method on a Task subclass instead"
        context.skip(setting, why, value)
    elif name == "*" and option in _WHERE:
        context.skip(
            setting, "where tasks go is default_queue or [task_routes], not a default for all", value
        )
    elif name == "*":
        context.put(("task_defaults", option), convert(value))
    else:
        context.put(("tasks", name, option), convert(value))


def routes(context: Context) -> None:
    """``task_routes`` as ``[task_routes]`` glob patterns, exact names first within each table,
    the order in which Celery's map router looks them up."""
    context.current = "task_routes"
    for router in _each(context.settings.get("task_routes")):
        if isinstance(router, dict):
            entries = list(router.items())
            exact = [(k, v) for k, v in entries if isinstance(k, str) and not _GLOB.search(k)]
            for pattern, route in [*exact, *(e for e in entries if e not in exact)]:
                _route(context, pattern, route)
        elif isinstance(router, tuple) and len(router) == 2:
            _route(context, router[0], router[1])
        else:
            context.skip(
                "task_routes",
                "a router function: write the routes it returns as [task_routes] glob patterns",
                router,
            )


def _route(context: Context, pattern: Any, route: Any) -> None:
    setting = context.current = f"task_routes[{pattern!r}]"
    if not isinstance(pattern, str):
        context.skip(setting, "a regular expression: celeriac matches task names with glob patterns", route)
        return
    if isinstance(route, str):
        context.put(("task_routes", pattern), route)
        return
    if hasattr(route, "name") and hasattr(route, "exchange"):  # a kombu Queue
        context.put(("task_routes", pattern), route.name)
        return
    table: dict[str, Any] = {}
    for key, value in dict(route).items():
        if key in _WHERE:
            table[key] = getattr(value, "name", value)
        elif key == "priority" and not _GLOB.search(pattern):
            context.put(("tasks", pattern, "priority"), int(value))
        else:
            context.skip(f"{setting}[{key!r}]", "routes give a queue, exchange and routing key only", value)
    if set(table) == {"queue"}:
        context.put(("task_routes", pattern), table["queue"])
    elif table:
        context.put(("task_routes", pattern), table)


def queues(context: Context) -> None:
    """``task_queues``: a Celery worker consumes every one of them; on RabbitMQ their
    exchanges and bindings become ``[amqp.queues.<name>]``."""
    declared = context.settings.get("task_queues")
    if not declared:
        return
    context.current = "task_queues"
    names = [queue.name for queue in declared]
    context.put(("worker", "queues"), names, "a Celery worker consumes all of task_queues")
    if context.broker_kind != "amqp":
        return
    for queue in declared:
        context.current = f"task_queues[{queue.name!r}]"
        bindings = [(queue.exchange, queue.routing_key)] if queue.exchange and queue.exchange.name else []
        bindings += [(each.exchange, each.routing_key) for each in sorted(queue.bindings, key=repr)]
        tables = []
        for exchange, key in bindings:
            if exchange.type not in ("direct", "topic", "fanout"):
                context.skip(f"task_queues[{queue.name!r}]", f"{exchange.type} exchanges are not supported")
                continue
            table: dict[str, Any] = {"exchange": exchange.name, "exchange_type": exchange.type}
            if key:
                table["routing_key"] = key
            tables.append(table)
        if tables:
            context.put(
                ("amqp", "queues", queue.name),
                {**tables[0], "bindings": tables[1:]} if tables[1:] else tables[0],
            )
        if queue.queue_arguments:
            context.skip(
                f"task_queues[{queue.name!r}].queue_arguments",
                "per-queue arguments: [amqp] sets them for all",
                queue.queue_arguments,
            )


def _each(value: Any) -> Iterator[Any]:
    """Celery accepts one router (or annotation) or a list of them."""
    if value is None:
        return
    if isinstance(value, list | tuple) and not (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str | re.Pattern)
    ):
        yield from value
    else:
        yield value
