"""One rule per Celery setting: the celeriac key it becomes, or why there is none.

Settings handled together (the broker's pieces, the pool with concurrency and prefetch, routes,
queues, annotations, the beat schedule) are :data:`GROUPS`; the rest are :data:`RULES`, and
every Celery setting without a rule gets the reason :func:`reason` gives.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from typing import Any

from celeriac_migrate import _beat
from celeriac_migrate import _connections
from celeriac_migrate import _tasks
from celeriac_migrate._context import Context
from celeriac_migrate._context import NoEquivalent
from celeriac_migrate._context import Rule
from celeriac_migrate._context import as_list
from celeriac_migrate._context import seconds
from celeriac_migrate._context import to
from celeriac_migrate._reasons import reason

__all__ = ["GROUPS", "RULES", "reason"]

_POOLS = {"prefork": "prefork", "processes": "prefork", "threads": "threads", "solo": "solo"}
_POOLS |= {"gevent": "gevent", "eventlet": "eventlet"}
_COMPRESSION = {"zlib", "gzip", "bzip2", "bzip", "lzma", "xz", "zstd", "zstandard"}


def imports(context: Context) -> None:
    names: list[str] = []
    for key in ("imports", "include"):
        names += [name for name in as_list(context.settings.get(key) or ()) if name not in names]
    if names:
        context.current = ", ".join(key for key in ("imports", "include") if context.is_set(key))
        context.put(("imports",), names)


def pool(context: Context) -> None:
    """``worker_pool`` (Celery's default is prefork), ``worker_concurrency`` and prefetch."""
    name = str(context.value("worker_pool"))
    context.current = "worker_pool" if context.is_set("worker_pool") else ""
    chosen = _POOLS.get(name, "")
    if not chosen:
        context.skip("worker_pool", "a pool class of Celery's: celeriac pools are plugins", name)
    elif chosen in ("gevent", "eventlet"):
        context.put(("worker", "pool"), chosen, f"start workers with celeriac-{chosen} ... worker")
    else:
        default = "" if context.is_set("worker_pool") else "Celery's default pool; celeriac's own is threads"
        context.put(("worker", "pool"), chosen, default)
    concurrency = context.settings.get("worker_concurrency")
    context.current = "worker_concurrency"
    if isinstance(concurrency, int) and concurrency > 0:
        context.put(("worker", "concurrency"), concurrency)
    elif concurrency not in (None, 0):
        context.skip("worker_concurrency", "a number of tasks at once, or 0 for the number of CPUs")
    _prefetch(context, concurrency if isinstance(concurrency, int) and concurrency > 0 else None)


def _prefetch(context: Context, concurrency: int | None) -> None:
    multiplier = context.settings.get("worker_prefetch_multiplier")
    if context.settings.get("worker_disable_prefetch") or multiplier == 1:
        context.current = "worker_disable_prefetch" if multiplier != 1 else "worker_prefetch_multiplier"
        context.put(
            ("worker", "prefetch"), 1, "the least celeriac reserves beyond running tasks (Celery: none)"
        )
    elif isinstance(multiplier, int) and multiplier > 1 and concurrency:
        context.current = "worker_prefetch_multiplier"
        extra = (multiplier - 1) * concurrency
        context.put(
            ("worker", "prefetch"),
            extra,
            f"{multiplier} x {concurrency} held, less the {concurrency} running",
        )
    elif multiplier is not None:
        context.skip(
            "worker_prefetch_multiplier",
            "celeriac's [worker] prefetch counts messages beyond those running: "
            "(multiplier - 1) x concurrency; 0 (unlimited) has no equivalent",
        )


def compression(context: Context, value: Any) -> None:
    if str(value) not in _COMPRESSION:
        raise NoEquivalent("celeriac-compression has zlib, gzip, bzip2, lzma (xz) and zstd")
    context.put(("compression",), str(value))


def result_expires(context: Context, value: Any) -> None:
    if value is None:
        context.put(("result_expires",), 0, "None: results are kept until forgotten")
    else:
        context.put(("result_expires",), seconds(value))


def queue_max_priority(context: Context, value: Any) -> None:
    if context.broker_kind != "amqp":
        raise NoEquivalent("for RabbitMQ queues; on Redis, [redis] priority_steps sets the priority bands")
    context.put(("amqp", "max_priority"), int(value or 0))


def queue_type(context: Context, value: Any) -> None:
    if context.broker_kind != "amqp" or value not in ("classic", "quorum"):
        raise NoEquivalent("[amqp] queue_type is classic or quorum, for RabbitMQ")
    context.put(("amqp", "queue_type"), value)


def start_method(context: Context, value: Any) -> None:
    if value not in ("fork", "forkserver"):
        raise NoEquivalent("[prefork] start_method is fork or forkserver (auto picks)")
    context.put(("prefork", "start_method"), value)


def heartbeat(context: Context, value: Any) -> None:
    if context.broker_kind != "amqp":
        raise NoEquivalent(
            "for RabbitMQ only; celeriac-redis checks idle connections ([redis] health_check_interval)"
        )
    context.put(("amqp", "heartbeat"), int(value))


def connection_timeout(context: Context, value: Any) -> None:
    sections = {"amqp": "socket_timeout", "redis": "socket_connect_timeout"}
    if context.broker_kind not in sections:
        raise NoEquivalent("no connection timeout for this broker")
    context.put((context.broker_kind, sections[context.broker_kind]), seconds(value))


def cert_store(context: Context, value: Any) -> None:
    """Celery's store is a glob pattern; celeriac trusts files, or every file of a folder."""
    path = str(value)
    if not glob.has_magic(path):
        context.put(("signing", "trusted"), path)
        return
    files = sorted(glob.glob(path))
    context.put(
        ("signing", "trusted"),
        files,
        "the glob's files now; list new certificates here, or name a folder that holds certificates only",
    )


def key_password(context: Context, value: Any) -> None:
    if context.with_secrets:
        context.put(("signing", "key_password"), str(value))
    else:
        context.suggest(
            ("signing",), "key_password", "...", "not printed: set CELERIAC_SIGNING__KEY_PASSWORD"
        )


RULES: dict[str, Rule] = {
    "task_serializer": to(("serializer",), str),
    "result_serializer": to(("result_serializer",), str),
    "accept_content": to(("accept",), as_list),
    "result_accept_content": to(("result_accept",), as_list),
    "task_compression": compression,
    "task_default_queue": to(("default_queue",), str),
    "task_default_priority": to(("default_priority",), int),
    "result_expires": result_expires,
    "task_acks_late": to(("acks_late",), bool),
    "task_always_eager": to(("task_always_eager",), bool),
    "task_eager_propagates": to(("task_eager_propagates",), bool),
    "task_send_sent_event": to(("events", "task_send_sent_event"), bool),
    "task_queue_max_priority": queue_max_priority,
    "task_default_queue_type": queue_type,
    "task_create_missing_queue_type": queue_type,
    "worker_send_task_events": to(("worker", "send_events"), bool),
    "worker_state_db": to(("worker", "statedb"), str),
    "worker_max_tasks_per_child": to(("prefork", "max_tasks_per_child"), int),
    "worker_max_memory_per_child": to(("prefork", "max_memory_per_child"), int),
    "worker_pool_start_method": start_method,
    "timezone": to(("beat", "timezone"), str),
    "beat_max_loop_interval": to(("beat", "max_interval"), seconds),
    "broker_heartbeat": heartbeat,
    "broker_connection_timeout": connection_timeout,
    "security_key": to(("signing", "key"), str),
    "security_certificate": to(("signing", "certificate"), str),
    "security_cert_store": cert_store,
    "security_digest": to(("signing", "digest"), str),
    "security_key_password": key_password,
    **dict.fromkeys(_tasks.TASK_DEFAULTS, _tasks.task_default),
    **dict.fromkeys(_connections.REDIS_BACKEND, _connections.redis_backend),
}

#: Handlers that read several settings at once, in this order (the broker first: later rules
#: depend on which broker it is), each with the settings it takes care of.
GROUPS: list[tuple[tuple[str, ...], Callable[[Context], None]]] = [
    (_connections.BROKER_SETTINGS, _connections.broker),
    (("broker_transport_options",), _connections.transport_options),
    (_connections.RESULT_SETTINGS, _connections.result_backend),
    (("broker_use_ssl", "redis_backend_use_ssl"), _connections.use_ssl),
    (("imports", "include"), imports),
    (("worker_pool", "worker_concurrency", "worker_prefetch_multiplier", "worker_disable_prefetch"), pool),
    (("task_routes",), _tasks.routes),
    (("task_queues",), _tasks.queues),
    (("task_annotations",), _tasks.annotate),
    (("beat_schedule",), _beat.schedule),
]
