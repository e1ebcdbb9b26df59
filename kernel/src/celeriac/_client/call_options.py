"""Celery's ``apply_async`` options that celeriac does not take per call, and why.

Celery 5 accepts many keywords per call; celeriac maps those it can (see ``Task.apply_async``)
and refuses the rest with a message naming what to do instead, rather than ignoring them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Option -> why it is refused and what to use instead.
REFUSED: Mapping[str, str] = {
    "retry": "publishing is retried by the transport's reconnection, not per call; "
    "a publish that still fails raises PublishError",
    "retry_policy": "publishing is retried by the transport's reconnection, not per call",
    "compression": "compression is chosen for the app (the 'compression' setting), not per call",
    "producer": "the app owns its broker connection; send through the app",
    "connection": "the app owns its broker connection; send through the app",
    "router": "routes come from the configuration ([routes]) and the task's queue option",
    "declare": "queues are declared by the transport from the configuration",
    "mandatory": "AMQP's mandatory flag is not offered; unroutable messages are a routing error",
    "immediate": "AMQP's immediate flag was removed from RabbitMQ",
    "delivery_mode": "the transport chooses the delivery mode, not the call",
    "reply_to": "replies go where the result store says (rpc://), not per call",
    "correlation_id": "the correlation id is the task id",
    "add_to_parent": "a task sent by a running task is always recorded as its child",
    "chord": "chord membership is set by chord(...), not by hand",
    "group_id": "group membership is set by group(...), not by hand",
    "group_index": "group membership is set by group(...), not by hand",
    "chain": "chains are built with chain(...) or |, not by hand",
    "parent_id": "the parent is the running task, found by the app",
    "root_id": "the root is the running task's root, found by the app",
    "stamped_headers": "stamping is not supported; pass headers={...}",
    "publisher": "the app owns its broker connection; send through the app",
}


def refuse(task: str, options: Mapping[str, Any]) -> TypeError:
    """The error for ``options`` given to ``apply_async`` of ``task`` that it does not take."""
    reasons = [
        f"{key}= ({REFUSED[key]})" if key in REFUSED else f"{key}= (not an option of apply_async)"
        for key in options
    ]
    return TypeError(f"{task}.apply_async() does not take " + "; ".join(reasons))
