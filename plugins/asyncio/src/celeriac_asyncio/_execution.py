"""Running an ``async def`` task: the executor's bookkeeping around an awaited coroutine.

The kernel's :class:`~celeriac.execution.Executor` calls the task function and records what
it returned; for an ``async def`` task that return value is a coroutine, which must be
awaited on the loop. So this module does what ``Executor.__call__`` does, in two halves that
run on a thread (they block: result store, hooks, retry publishing) around the ``await``:
:meth:`CoroutineExecution.begin` and :meth:`CoroutineExecution.finish`. It uses only the
kernel's public pieces; ``docs/pools.md`` proposes the kernel change that would remove it.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import TYPE_CHECKING
from typing import Any

from celeriac import states
from celeriac.errors import Ignore
from celeriac.errors import Retry
from celeriac.execution import Executor
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.request import TaskRequest
from celeriac.task import TaskCall
from celeriac.task import retry_delay

if TYPE_CHECKING:
    from celeriac.task import Task

log = logging.getLogger("celeriac.worker")


class CoroutineExecution:
    """``Executor.__call__`` split at the ``await``, for the tasks of ``executor.app``."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.app = executor.app
        self.lifecycle = executor.app.plugins.lifecycle
        self.stores_results = executor.app.result_store_url is not None

    def begin(self, request: TaskRequest) -> Outcome | None:
        """Before the coroutine runs: hooks and STARTED; an outcome means do not run it."""
        if request.id in self.executor.revoked:
            return self.executor(request)  # records REVOKED and runs nothing
        task = self.app.tasks[request.task]
        self.lifecycle.task_prerun(task, request)
        if task.options.track_started:
            self._store(request, states.STARTED, {"pid": os.getpid(), "hostname": request.hostname}, None)
        return None

    def finish(
        self, request: TaskRequest, retval: Any, error: BaseException | None, runtime: float
    ) -> Outcome:
        """After it: record what it returned (``retval``) or raised (``error``)."""
        task = self.app.tasks[request.task]
        reason: str | None = None
        state = states.SUCCESS
        if isinstance(error, Ignore):
            reason = "ignored"
        elif isinstance(error, Exception):
            state, retval = self._failed(task, request, error)
            reason = f"{type(retval).__name__}: {retval}"
        elif error is not None:
            raise error  # not a task failure (KeyboardInterrupt ...): the pool requeues
        if state == states.SUCCESS and reason is None:
            self._store(request, state, retval, None)
            self.lifecycle.task_success(task, request, retval)
            if log.isEnabledFor(logging.INFO):
                log.info("Task %s[%s] succeeded in %.4fs: %.200r", task.name, request.id, runtime, retval)
        if not request.message.embed.empty:
            from celeriac.workflow import after_task

            after_task(self.app, request, state, retval)
        self.lifecycle.task_postrun(task, request, state, retval)
        disposition = Disposition.ACK
        if state == states.FAILURE and task.options.acks_late and not task.options.acks_on_failure_or_timeout:
            disposition = Disposition.DEAD_LETTER
        return Outcome(request=request, state=state, disposition=disposition, runtime=runtime, reason=reason)

    def _failed(
        self, task: Task[Any, Any], request: TaskRequest, exc: Exception
    ) -> tuple[str, BaseException]:
        if Executor.autoretries(task, exc):
            try:
                TaskCall(task, request).retry(exc=exc, countdown=retry_delay(task.options, request.retries))
            except Exception as raised:  # Retry, or MaxRetriesExceededError once the limit is reached
                exc = raised
        if isinstance(exc, Retry):
            cause = exc.exc or exc
            self._store(request, states.RETRY, cause, _traceback(cause))
            self.lifecycle.task_retry(task, request, cause)
            log.info("Task %s[%s] will retry: %r", task.name, request.id, cause)
            return states.RETRY, cause
        trace = _traceback(exc)
        self._store(request, states.FAILURE, exc, trace)
        self.lifecycle.task_failure(task, request, exc, trace)
        log.error("Task %s[%s] raised %s: %s\n%s", task.name, request.id, type(exc).__name__, exc, trace)
        return states.FAILURE, exc

    def _store(self, request: TaskRequest, state: str, value: Any, trace: str | None) -> None:
        # As in Celery, an ignored result stores no state at all, failures included.
        if not self.stores_results or request.message.ignore_result:
            return
        self.app.result_store.store(self.app.results.encode(request.id, state, value, trace))


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
