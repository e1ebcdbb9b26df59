"""A task's options, resolved once when it is declared: the defaults, then what code declares,
then ``[tasks."name"]`` in the configuration, then ``task_routes``; checked, so a bad rate
limit or route is an error naming the task and where the value came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import asdict
from attrs import evolve

from celeriac._client.routing import TaskRoute
from celeriac._client.routing import route
from celeriac._client.routing import route_problem
from celeriac._client.task import TaskOptions
from celeriac._model.config import Config
from celeriac._model.config import TaskConfig
from celeriac._model.errors import ConfigError
from celeriac._model.ratelimit import parse_rate

#: Where a task goes is chosen per task, by route or by ``default_queue``, never for all at once.
_NOT_DEFAULTS = ("queue", "exchange", "routing_key")


def resolve_task_options(config: Config, name: str, declared: Mapping[str, Any]) -> TaskOptions:
    """Defaults, then ``[task_defaults]``, then what code declares, then ``[tasks."name"]``,
    then ``task_routes``."""
    defaults = _set_in_file(config.task_defaults)
    for key in _NOT_DEFAULTS:
        if key in defaults:
            raise ConfigError(
                f"task_defaults.{key} = {defaults[key]!r}: where tasks go is not a default; "
                "use default_queue, task_routes or the task's own options"
            )
    try:
        options = TaskOptions(**{"acks_late": config.acks_late, **defaults, **declared})
    except TypeError as exc:
        raise TypeError(f"task {name!r}: {exc}") from None
    options = evolve(options, **_set_in_file(config.task(name)))
    if options.queue is None and options.exchange is None:
        matched = route(name, config.task_routes)
        if matched is not None:
            problem = route_problem(matched)
            if problem is not None:
                raise ConfigError(f"task_routes: the route of task {name!r}: {problem}")
            options = evolve(
                options, queue=matched.queue, exchange=matched.exchange, routing_key=matched.routing_key
            )
    if options.routing_key is not None and options.exchange is None:
        raise ConfigError(f"task {name!r}: {route_problem(TaskRoute(routing_key=options.routing_key))}")
    for key in ("rate_limit", "global_rate_limit"):
        value = getattr(options, key)
        if value is None:
            continue
        try:
            parse_rate(value)
        except ValueError as exc:
            source = config.source_of(f"tasks.{name}.{key}")
            raise ConfigError(f"task {name!r}: {key}: {exc} (from {source})") from None
    return options


def _set_in_file(table: TaskConfig) -> dict[str, Any]:
    """The options a ``[tasks."name"]`` or ``[task_defaults]`` table sets."""
    values = {key: value for key, value in asdict(table, recurse=False).items() if value is not None}
    if values.get("max_retries") == -1:  # TOML has no null: -1 means no limit
        values["max_retries"] = None
    return values
