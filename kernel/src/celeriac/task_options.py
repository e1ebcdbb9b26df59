"""A task's options, resolved once when it is declared: the defaults, then what code declares,
then ``[tasks."name"]`` in the configuration, then ``task_routes``; checked, so a bad rate
limit or route is an error naming the task and where the value came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import asdict
from attrs import evolve

from celeriac.config import Config
from celeriac.errors import ConfigError
from celeriac.ratelimit import parse_rate
from celeriac.routing import TaskRoute
from celeriac.routing import route
from celeriac.routing import route_problem
from celeriac.task import TaskOptions


def resolve_task_options(config: Config, name: str, declared: Mapping[str, Any]) -> TaskOptions:
    """Defaults, then what code declares, then ``[tasks."name"]``, then ``task_routes``."""
    try:
        options = TaskOptions(**{"acks_late": config.acks_late, **declared})
    except TypeError as exc:
        raise TypeError(f"task {name!r}: {exc}") from None
    from_file = {k: v for k, v in vars_of(config.task(name)).items() if v is not None}
    if from_file.get("max_retries") == -1:  # TOML has no null: -1 means no limit
        from_file["max_retries"] = None
    options = evolve(options, **from_file)
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
        problem = route_problem(TaskRoute(queue=options.queue, routing_key=options.routing_key))
        raise ConfigError(f"task {name!r}: {problem}")
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


def vars_of(instance: Any) -> dict[str, Any]:
    """An attrs instance's fields as a dict, shallow."""
    return asdict(instance, recurse=False)
