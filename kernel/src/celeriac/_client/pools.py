"""What pool plugins are given and share: the typed :class:`PoolContext` a pool factory
receives, the :class:`Job` a pool holds, the time limits of a request, and
:func:`run_safely`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Container
from typing import TYPE_CHECKING

from attrs import frozen

from celeriac._model import states
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.request import TaskRequest

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.execution import Executor
    from celeriac._contract.lifecycle import Lifecycle
    from celeriac._model.config import Config

log = logging.getLogger("celeriac.worker")


@frozen(kw_only=True)
class PoolContext:
    """Everything a pool factory gets from the worker (``PoolSpec.factory(context)``).

    :param config: the worker's configuration (``worker.concurrency``, the pool's section).
    :param app: the app whose tasks the pool runs.
    :param executor: runs one request here (``executor(request) -> Outcome``), or in parts
        for pools that run the task function themselves (see :class:`Executor`).
    :param revoked: ids revoked while their request waited; live, checked before running.
    :param hooks: the typed lifecycle hook calls (``hooks.implements(name)`` ...).
    """

    config: Config
    app: Celeriac
    executor: Executor
    revoked: Container[str]
    hooks: Lifecycle

    @property
    def concurrency(self) -> int:
        """How many requests the pool runs at once (``worker.concurrency``)."""
        return self.config.worker.concurrency


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
