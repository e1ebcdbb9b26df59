"""Where a task goes: a queue, or an exchange and a routing key on brokers that have exchanges.

An exchange and routing key travel where kombu keeps them, in the message properties:
``properties["delivery_info"] = {"exchange": ..., "routing_key": ...}``. The transport
decides what to do with them: RabbitMQ publishes to the exchange; transports without
exchanges (Redis, SQLite, memory) put the message in its queue as always.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve
from attrs import frozen

if TYPE_CHECKING:
    from celeriac._model.records import Envelope


@frozen(kw_only=True)
class TaskRoute:
    """A table value of ``task_routes``: ``{queue = "media"}`` or
    ``{exchange = "media", routing_key = "media.video"}`` (a plain string names a queue)."""

    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None


def route(name: str, routes: Mapping[str, str | TaskRoute]) -> TaskRoute | None:
    """The first ``task_routes`` entry whose glob matches the task name, in file order."""
    for pattern, target in routes.items():
        if fnmatch.fnmatchcase(name, pattern):
            return TaskRoute(queue=target) if isinstance(target, str) else target
    return None


def route_problem(route: TaskRoute) -> str | None:
    """What is wrong with a destination, or None: a routing key needs an exchange."""
    if route.routing_key is not None and route.exchange is None:
        return f"routing_key {route.routing_key!r} without an exchange (name the queue with queue = ...)"
    if route.queue is None and route.exchange is None:
        return "neither a queue nor an exchange"
    return None


def resolve_exchange(
    *,
    queue: str | None,
    exchange: str | None,
    routing_key: str | None,
    task_exchange: str | None,
    task_routing_key: str | None,
) -> tuple[str, str] | None:
    """The exchange and routing key of one call, or None to publish to the queue.

    Each of the two is the call's, else the task's; a call that names only a queue sends
    to that queue, whatever exchange the task declares.

    :raises ValueError: a routing key with no exchange anywhere.
    """
    if exchange is None:
        if queue is not None and routing_key is None:
            return None
        exchange = task_exchange
    if exchange is None:
        if routing_key is not None:
            raise ValueError(f"routing_key={routing_key!r} needs an exchange (or name the queue with queue=)")
        return None
    key = routing_key if routing_key is not None else task_routing_key
    return exchange, key or ""


def with_exchange(envelope: Envelope, exchange: str, routing_key: str) -> Envelope:
    """The envelope with kombu's ``delivery_info`` naming the exchange and routing key."""
    info = {"exchange": exchange, "routing_key": routing_key}
    return evolve(envelope, properties={**envelope.properties, "delivery_info": info})


def exchange_of(envelope: Envelope) -> tuple[str, str] | None:
    """The named exchange and routing key an envelope asks for, or None (the default exchange)."""
    info: Any = envelope.properties.get("delivery_info")
    if not isinstance(info, Mapping) or not info.get("exchange"):
        return None
    return str(info["exchange"]), str(info.get("routing_key") or "")
