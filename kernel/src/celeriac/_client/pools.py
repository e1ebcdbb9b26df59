"""Helpers shared by pool plugins."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from celeriac._model import states
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.request import TaskRequest

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.worker")


class Job:
    """A request a pool holds until it runs, with the worker's two callbacks for it."""

    __slots__ = ("on_done", "on_start", "request")

    def __init__(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        self.request = request
        self.on_start = on_start
        self.on_done = on_done


def time_limits(app: Celeriac | None, request: TaskRequest) -> tuple[float | None, float | None]:
    """(hard, soft) seconds for ``request``, None meaning none: the message's ``timelimit``
    header (a Celery client's ``time_limit=`` / ``soft_time_limit=``), else the task's options."""
    hard, soft = request.message.timelimit
    if app is not None and (hard is None or soft is None):
        task = app.tasks.get(request.task)
        if task is not None:
            hard = hard if hard is not None else task.options.time_limit
            soft = soft if soft is not None else task.options.soft_time_limit
    return hard or None, soft or None


def run_safely(execute: Callable[[TaskRequest], Outcome], request: TaskRequest) -> Outcome:
    """Run ``execute``; an error escaping it (a bug, not a task failure) requeues the message.

    The executor already turns task exceptions into FAILURE outcomes, so anything reaching
    here means the result could not be stored: giving the message back loses nothing.
    """
    try:
        return execute(request)
    except BaseException as exc:
        log.exception("executing %s[%s] failed outside the task", request.task, request.id)
        return Outcome(
            request=request,
            state=states.FAILURE,
            disposition=Disposition.REQUEUE,
            reason=f"{type(exc).__name__}: {exc}",
        )
