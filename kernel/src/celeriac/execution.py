"""Running one task request: hooks, the task function, the stored result.

This runs wherever the pool runs requests (a thread, a child process), so results are
stored in parallel, and only the acknowledgement goes back to the consumer.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING
from typing import Any

from celeriac import states
from celeriac.errors import Ignore
from celeriac.errors import Retry
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.request import TaskRequest

if TYPE_CHECKING:
    from celeriac.app import Celeriac
    from celeriac.task import Task

log = logging.getLogger("celeriac.worker")


class Executor:
    """Executes requests for the tasks registered with ``app``."""

    def __init__(self, app: Celeriac) -> None:
        self.app = app
        self.hook = app.plugins.hook
        self.lifecycle = app.plugins.lifecycle

    def __call__(self, request: TaskRequest) -> Outcome:
        task = self.app.tasks[request.task]
        lifecycle, hook = self.lifecycle, self.hook
        if lifecycle.task_prerun:
            hook.celeriac_task_prerun(task=task, request=request)
        started = time.perf_counter()
        retval: Any = None
        reason: str | None
        try:
            retval = task.run(request)
        except Retry as retry:
            state, reason = states.RETRY, str(retry)
            self._store(task, request, state, retry.exc or retry, _traceback(retry))
            if lifecycle.task_retry:
                hook.celeriac_task_retry(task=task, request=request, reason=retry.exc or retry)
            log.info("Task %s[%s] retry: %s", task.name, request.id, reason)
        except Ignore:
            state, reason = states.SUCCESS, "ignored"
        except Exception as exc:
            if task.options.autoretry_for and isinstance(exc, task.options.autoretry_for):
                return self._autoretry(task, request, exc, started)
            state, reason, retval = states.FAILURE, f"{type(exc).__name__}: {exc}", exc
            trace = _traceback(exc)
            self._store(task, request, state, exc, trace)
            if lifecycle.task_failure:
                hook.celeriac_task_failure(task=task, request=request, exception=exc, traceback=trace)
            log.error("Task %s[%s] raised %s\n%s", task.name, request.id, reason, trace)
        else:
            state, reason = states.SUCCESS, None
            self._store(task, request, state, retval, None)
            if lifecycle.task_success:
                hook.celeriac_task_success(task=task, request=request, result=retval)
        runtime = time.perf_counter() - started
        if state == states.SUCCESS and log.isEnabledFor(logging.INFO):
            log.info("Task %s[%s] succeeded in %.4fs: %.200r", task.name, request.id, runtime, retval)
        if lifecycle.task_postrun:
            hook.celeriac_task_postrun(task=task, request=request, state=state, retval=retval)
        return Outcome(
            request=request, state=state, disposition=Disposition.ACK, runtime=runtime, reason=reason
        )

    def _autoretry(
        self, task: Task[Any, Any], request: TaskRequest, exc: Exception, started: float
    ) -> Outcome:
        from celeriac.task import TaskCall

        try:
            TaskCall(task, request).retry(exc=exc)
        except Retry:
            pass
        except Exception as final:
            trace = _traceback(final)
            self._store(task, request, states.FAILURE, final, trace)
            return Outcome(
                request=request,
                state=states.FAILURE,
                runtime=time.perf_counter() - started,
                reason=str(final),
            )
        self._store(task, request, states.RETRY, exc, _traceback(exc))
        return Outcome(
            request=request, state=states.RETRY, runtime=time.perf_counter() - started, reason=repr(exc)
        )

    def _store(
        self, task: Task[Any, Any], request: TaskRequest, state: str, value: Any, trace: str | None
    ) -> None:
        if request.message.ignore_result and state == states.SUCCESS:
            return
        record = self.app.results.encode(request.id, state, value, trace)
        self.app.result_store.store(record)


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
