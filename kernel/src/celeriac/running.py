"""The task running in the current context, so anything it publishes is known as its child.

Celery users rely on ``parent_id``/``root_id`` on every message a task sends (monitoring
draws the tree from them) and on ``AsyncResult.children``; both need the running request
wherever ``delay()`` is called inside a task, bound or not. A :class:`~contextvars.ContextVar`
carries it: local to a thread or an asyncio task like a thread-local, so concurrent runs
never see each other's, and unset outside a task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from attrs import Factory
from attrs import define

from celeriac.request import TaskRequest


@define
class Running:
    """A request being run, and the ids of the tasks it has sent so far."""

    request: TaskRequest
    children: list[str] = Factory(list)


CURRENT: ContextVar[Running | None] = ContextVar("celeriac_running", default=None)


@contextmanager
def running(request: TaskRequest) -> Iterator[Running]:
    """Mark ``request`` as the one running here until the block ends."""
    run = Running(request)
    token = CURRENT.set(run)
    try:
        yield run
    finally:
        CURRENT.reset(token)


def children_meta(children: list[str]) -> list[object]:
    """Celery's stored form of child results: ``[[id, parent], None]`` per task."""
    return [[[child, None], None] for child in children]
