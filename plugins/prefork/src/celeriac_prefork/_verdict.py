"""What the parent records for a task whose child did not report back.

A child killed at its hard time limit, or that died (segfault, SIGKILL, ``os._exit``),
cannot store its own result, so the parent does it with the app's result encoder and
store, and calls the failure hook, as Celery's parent does for these two cases.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from celeriac import states
from celeriac.plugin import CeleriacError
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import TaskOptions
from celeriac.plugin import TaskRequest
from celeriac.plugin import TaskRevokedError
from celeriac.plugin import TimeLimitExceededError
from celeriac.plugin import WorkerLostError
from celeriac.plugin import time_limits as pool_time_limits

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac.plugin import Task

log = logging.getLogger("celeriac.worker")
_DEFAULT_OPTIONS = TaskOptions()
Limits = tuple[float | None, float | None]

#: Why the parent killed a child; None when it died on its own.
TIMEOUT = "timeout"
TERMINATED = "terminated"
SHUTDOWN = "shutdown"


def time_limits(app: Celeriac | None, request: TaskRequest, overrides: Mapping[str, Limits]) -> Limits:
    """(hard, soft) seconds, 0 or None meaning none.

    Limits set by remote control (``overrides``, by task name) come first, then the
    message's ``timelimit`` header, then the task's options.
    """
    override = overrides.get(request.task)
    if override is not None:
        hard, soft = override
        return hard or None, soft or None
    return pool_time_limits(app, request)


def verdict(
    app: Celeriac | None, request: TaskRequest, pid: int, kill_reason: str | None, hard: float | None
) -> Outcome:
    """Record the end of a request whose child died, and say what to do with its message.

    :param hard: the request's hard time limit, named in the error when it was the cause.
    """
    task = app.tasks.get(request.task) if app is not None else None
    options = task.options if task is not None else _DEFAULT_OPTIONS
    name = f"{request.task}[{request.id}]"
    if kill_reason == TERMINATED:
        log.warning("Task %s terminated: its child process %d was killed on request", name, pid)
        exc: CeleriacError = TaskRevokedError("terminated")
        if app is not None:
            app.plugins.lifecycle.task_revoked(request, "terminated", {"terminated": True})
        return _record(app, task, request, states.REVOKED, exc, Disposition.ACK)
    if kill_reason == TIMEOUT:
        exc = TimeLimitExceededError(f"hard time limit ({hard or 0:g} s) exceeded; child {pid} killed")
    else:
        exc = WorkerLostError(f"child process {pid} exited while running the task")
        if options.acks_late and options.reject_on_worker_lost:
            log.error("Task %s lost with its child process %d; requeued (reject_on_worker_lost)", name, pid)
            return Outcome(
                request=request, state=states.FAILURE, disposition=Disposition.REQUEUE, reason=_reason(exc)
            )
    log.error("Task %s raised %s: %s", name, type(exc).__name__, exc)
    failed = Disposition.ACK
    if options.acks_late and not options.acks_on_failure_or_timeout:
        failed = Disposition.DEAD_LETTER
    return _record(app, task, request, states.FAILURE, exc, failed)


def _record(
    app: Celeriac | None,
    task: Task[Any, Any] | None,
    request: TaskRequest,
    state: str,
    exc: CeleriacError,
    disposition: Disposition,
) -> Outcome:
    if app is not None:
        try:
            if app.result_store_url is not None and not request.message.ignore_result:
                app.result_store.store(app.results.encode(request.id, state, exc, None))
        except Exception as store_exc:
            # As for any error outside the task: giving the message back loses nothing.
            log.exception("could not record %s for task %s", state, request.id)
            return Outcome(
                request=request, state=state, disposition=Disposition.REQUEUE, reason=_reason(store_exc)
            )
        if task is not None and state == states.FAILURE:
            app.plugins.lifecycle.task_failure(task, request, exc, "")
    return Outcome(request=request, state=state, disposition=disposition, reason=_reason(exc))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
