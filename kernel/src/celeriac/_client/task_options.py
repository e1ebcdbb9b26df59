"""A task's options, resolved once when it is declared: the defaults, then what code declares,
then ``[tasks."name"]`` in the configuration, then ``task_routes``; checked, so a bad rate
limit or route is an error naming the task and where the value came from."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from attrs import asdict
from attrs import evolve
from attrs import field
from attrs import frozen

from celeriac._model.config import Config
from celeriac._model.config import TaskConfig
from celeriac._model.errors import ConfigError
from celeriac._model.ratelimit import parse_rate
from celeriac._model.routing import TaskRoute
from celeriac._model.routing import route
from celeriac._model.routing import route_problem


@frozen(kw_only=True)
class TaskOptions:
    """Per-task settings; the TOML ``[tasks."name"]`` table overrides what code declares."""

    queue: str | None = None
    #: Publish to this exchange with ``routing_key`` on brokers that have exchanges
    #: (RabbitMQ); the others put the message in ``queue`` as always.
    exchange: str | None = None
    routing_key: str | None = None
    priority: int | None = None
    ignore_result: bool = False
    acks_late: bool = True
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    time_limit: float | None = None
    soft_time_limit: float | None = None
    rate_limit: str | None = None
    #: A limit shared by every worker, through a store that can (Redis, SQLite on one host).
    global_rate_limit: str | None = None
    serializer: str | None = None
    expires: float | None = None
    autoretry_for: tuple[type[BaseException], ...] = field(default=(), converter=tuple)
    #: Exceptions that never trigger an automatic retry, even when ``autoretry_for`` matches.
    dont_autoretry_for: tuple[type[BaseException], ...] = field(default=(), converter=tuple)
    #: Automatic retries wait exponentially: ``retry_backoff`` seconds (True means 1) doubled
    #: on each retry, at most ``retry_backoff_max``, with full jitter when ``retry_jitter``.
    retry_backoff: float = field(default=0.0, converter=float)
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    #: Record STARTED when a worker begins the task.
    track_started: bool = False
    #: With late acks: acknowledge a task that failed (True), or dead-letter it (False).
    acks_on_failure_or_timeout: bool = True
    #: With late acks: requeue a task whose worker process died, instead of failing it.
    reject_on_worker_lost: bool = False


def retry_delay(options: TaskOptions, retries: int, rng: random.Random | None = None) -> float:
    """The countdown of an automatic retry: exponential back-off with optional full jitter."""
    if not options.retry_backoff:
        return options.default_retry_delay
    delay = min(options.retry_backoff_max, options.retry_backoff * (2**retries))
    return (rng or random).uniform(0, delay) if options.retry_jitter else delay


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
