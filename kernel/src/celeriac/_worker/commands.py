"""Remote-control commands a worker answers: Celery's names and reply shapes.

Inspect commands return data; control commands return ``{"ok": ...}`` or
``{"error": ...}``. Plugins add commands through ``celeriac_add_control_commands``.
"""

from __future__ import annotations

import os
import signal as signals
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from attrs import asdict
from attrs import frozen

from celeriac._contract.protocols import Pool
from celeriac._model.redaction import redact
from celeriac._model.redaction import redact_url
from celeriac._model.request import TaskRequest
from celeriac._worker.events import EventDispatcher
from celeriac._worker.state import RevokedSet

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._contract.shutdown import ShutdownState
    from celeriac._model.config import Config
    from celeriac._worker.consumer import Consumer


@frozen
class Mailbox:
    """What commands may read and change in one worker."""

    app: Celeriac
    config: Config
    hostname: str
    revoked: RevokedSet
    statedb: Path | None
    consumer: Consumer
    pool: Pool
    events: EventDispatcher
    shutdown: ShutdownState
    started_at: float


Command = Callable[..., Any]


def request_info(request: TaskRequest, started: float | None = None) -> dict[str, Any]:
    """A request as Celery's ``inspect active``/``reserved`` show it."""
    message = request.message
    return {
        "id": request.id,
        "name": request.task,
        "args": message.argsrepr if message.argsrepr is not None else repr(message.args),
        "kwargs": message.kwargsrepr if message.kwargsrepr is not None else repr(dict(message.kwargs)),
        "hostname": request.hostname,
        "time_start": started,
        "acknowledged": False,
        "delivery_info": {"routing_key": request.queue, "redelivered": request.delivery_count > 1},
        "worker_pid": os.getpid(),
    }


# --- inspect ------------------------------------------------------------------------------


def active(mailbox: Mailbox, **_: Any) -> list[dict[str, Any]]:
    running, _reserved = mailbox.consumer.requests()
    return [request_info(request, started) for request, started in running]


def reserved(mailbox: Mailbox, **_: Any) -> list[dict[str, Any]]:
    return [request_info(request) for request in mailbox.consumer.requests()[1]]


def scheduled(mailbox: Mailbox, **_: Any) -> list[dict[str, Any]]:
    """Always empty: delayed tasks wait in the broker, never in a worker."""
    return []


def registered(mailbox: Mailbox, **_: Any) -> list[str]:
    return sorted(mailbox.app.tasks)


def revoked(mailbox: Mailbox, **_: Any) -> list[str]:
    return sorted(mailbox.revoked.ids())


def stats(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    consumer = mailbox.consumer
    return {
        "pid": os.getpid(),
        "uptime": round(time.time() - mailbox.started_at, 3),
        "processed": consumer.processed,
        "active": consumer.active_count,
        "prefetch_count": consumer.capacity,
        "queues": list(consumer.queues),
        "pool": {
            "implementation": mailbox.config.worker.pool,
            "max-concurrency": mailbox.pool.limit,
            **(_pool_stats(mailbox.pool)),
        },
        "broker": {"url": redact_url(mailbox.config.broker)},
        "loadavg": list(os.getloadavg()),
        "sw_ident": "celeriac",
    }


def _pool_stats(pool: Pool) -> dict[str, Any]:
    stats = getattr(pool, "stats", None)  # pools with children report them (prefork)
    return dict(stats()) if callable(stats) else {}


def conf(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    data = asdict(
        mailbox.config, filter=lambda attribute, _: attribute.name not in ("provenance", "sections")
    )
    data.update({name: asdict(section) for name, section in mailbox.config.sections.items()})
    return redact(data)


def query_task(mailbox: Mailbox, ids: list[str] | str | None = None, **_: Any) -> dict[str, Any]:
    wanted = {ids} if isinstance(ids, str) else set(ids or ())
    running, waiting = mailbox.consumer.requests()
    found: dict[str, Any] = {}
    for request, started in running:
        if request.id in wanted:
            found[request.id] = ["active", request_info(request, started)]
    for request in waiting:
        if request.id in wanted:
            found[request.id] = ["reserved", request_info(request)]
    return found


def active_queues(mailbox: Mailbox, **_: Any) -> list[dict[str, Any]]:
    return [{"name": name, "routing_key": name} for name in mailbox.consumer.queues]


# --- control ------------------------------------------------------------------------------


def ping(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    return {"ok": "pong"}


def revoke(
    mailbox: Mailbox, task_id: str | list[str], terminate: bool = False, signal: str = "SIGTERM", **_: Any
) -> dict[str, Any]:
    ids = [task_id] if isinstance(task_id, str) else list(task_id)
    mailbox.revoked.add(ids)
    if mailbox.statedb is not None:
        mailbox.revoked.save(mailbox.statedb)
    terminated = []
    if terminate:
        stop = getattr(mailbox.pool, "terminate", None)  # process pools can stop a running task
        signum = int(getattr(signals, signal, signals.SIGTERM)) if isinstance(signal, str) else int(signal)
        terminated = [one for one in ids if stop is not None and stop(one, signum)]
    note = f"; terminated {', '.join(terminated)}" if terminated else ""
    return {"ok": f"tasks {', '.join(ids)} flagged as revoked{note}"}


def shutdown(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    mailbox.shutdown.request()
    return {"ok": "shutting down (warm)"}


def rate_limit(mailbox: Mailbox, task_name: str, rate_limit: str | None = None, **_: Any) -> dict[str, Any]:
    if task_name not in mailbox.app.tasks:
        return {"error": f"unknown task {task_name!r}"}
    mailbox.consumer.set_rate_limit(task_name, rate_limit)
    return {"ok": f"rate limit of {task_name} set to {rate_limit or 'none'}"}


def time_limit(
    mailbox: Mailbox, task_name: str, soft: float | None = None, hard: float | None = None, **_: Any
) -> dict[str, Any]:
    setter = getattr(mailbox.pool, "set_time_limit", None)
    if setter is None:
        return {"error": f"the {mailbox.config.worker.pool} pool does not enforce time limits"}
    setter(task_name, soft=soft, hard=hard)
    return {"ok": f"time limits of {task_name} set to soft={soft} hard={hard}"}


def enable_events(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    if not mailbox.events.sinks:
        return {"error": "no event sink is installed (pip install celeriac-events)"}
    mailbox.events.enabled = True
    return {"ok": "task events enabled"}


def disable_events(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    mailbox.events.enabled = False
    return {"ok": "task events disabled"}


def add_consumer(mailbox: Mailbox, queue: str, **_: Any) -> dict[str, Any]:
    mailbox.consumer.add_queue(queue)
    return {"ok": f"consuming from {queue}"}


def cancel_consumer(mailbox: Mailbox, queue: str, **_: Any) -> dict[str, Any]:
    mailbox.consumer.remove_queue(queue)
    return {"ok": f"no longer consuming from {queue}"}


def _resize(method: str) -> Command:
    def resize(mailbox: Mailbox, n: int = 1, **_: Any) -> dict[str, Any]:
        change = getattr(mailbox.pool, method, None)
        if change is None:
            return {"error": f"the {mailbox.config.worker.pool} pool cannot {method.replace('_', ' ')}"}
        change(int(n))
        return {"ok": f"pool now has {mailbox.pool.limit} slots"}

    return resize


def autoscale(mailbox: Mailbox, max: int, min: int = 0, **_: Any) -> dict[str, Any]:  # noqa: A002 - Celery's argument names
    change = getattr(mailbox.pool, "autoscale", None)
    if change is None:
        return {"error": f"the {mailbox.config.worker.pool} pool cannot autoscale"}
    change(int(max), int(min))
    return {"ok": f"autoscale now {max},{min}"}


def pool_restart(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    """Replace a process pool's children (Celery's ``pool_restart``); other pools run tasks
    in the worker's own process, which only a restart of the worker renews."""
    restart = getattr(mailbox.pool, "restart", None)
    if restart is None:
        return {
            "error": f"the {mailbox.config.worker.pool} pool runs tasks in the worker's process and "
            "cannot restart apart from it; restart the worker (or run it with --autoreload)"
        }
    restart()
    return {"ok": "restarting pool"}


KERNEL_COMMANDS: dict[str, Command] = {
    "active": active,
    "reserved": reserved,
    "scheduled": scheduled,
    "registered": registered,
    "revoked": revoked,
    "stats": stats,
    "conf": conf,
    "query_task": query_task,
    "active_queues": active_queues,
    "ping": ping,
    "revoke": revoke,
    "shutdown": shutdown,
    "rate_limit": rate_limit,
    "time_limit": time_limit,
    "enable_events": enable_events,
    "disable_events": disable_events,
    "add_consumer": add_consumer,
    "cancel_consumer": cancel_consumer,
    "pool_grow": _resize("grow"),
    "pool_shrink": _resize("shrink"),
    "autoscale": autoscale,
    "pool_restart": pool_restart,
}
