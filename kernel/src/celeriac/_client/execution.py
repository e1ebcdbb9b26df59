"""Running one task request: hooks, the task function, the stored result.

This runs wherever the pool runs requests (a thread, a child process), so results are
stored in parallel, and only the acknowledgement goes back to the consumer.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
import traceback
from collections.abc import Container
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.pools import run_safely
from celeriac._client.task_options import retry_delay
from celeriac._client.workflow import after_task
from celeriac._contract.protocols import BatchStore
from celeriac._model import states
from celeriac._model.errors import Ignore
from celeriac._model.errors import Replaced
from celeriac._model.errors import Retry
from celeriac._model.errors import SerializationError
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.outcome import describe
from celeriac._model.records import ResultRecord
from celeriac._model.request import TaskRequest
from celeriac._model.running import children_meta
from celeriac._model.running import running

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task

log = logging.getLogger("celeriac.worker")

#: What :meth:`Executor.finish` takes: request, return value, exception, runtime, children.
Finished = tuple[TaskRequest, Any, Exception | None, float, Sequence[str]]


class Executor:
    """Executes requests for the tasks registered with ``app``."""

    def __init__(
        self, app: Celeriac, *, revoked: Container[str] = frozenset(), describe_results: bool = False
    ) -> None:
        self.app = app
        #: Put a short repr of each return value in the outcome (for task-succeeded events).
        self.describe_results = describe_results
        #: Ids revoked while their request waited in the pool: checked again just before running.
        self.revoked = revoked
        self.lifecycle = app.plugins.lifecycle
        self.stores_results = app.result_store_url is not None

    def __call__(self, request: TaskRequest) -> Outcome:
        """Run ``request`` here: :meth:`begin`, the task function, :meth:`finish`."""
        early = self.begin(request)
        if early is not None:
            return early
        return self.finish(*self.call(request))

    def call(self, request: TaskRequest) -> Finished:
        """The task function alone, inside :func:`~celeriac._model.running.running`: what
        :meth:`finish` takes. Pools that store results in batches call it between
        :meth:`begin` and :meth:`finish_many`."""
        task = self.app.tasks[request.task]
        started = time.perf_counter()
        retval: Any = None
        error: Exception | None = None
        with running(request) as run:
            try:
                retval = task.run(request)
                if inspect.iscoroutine(retval):
                    retval.close()
                    raise TypeError(
                        f"{task.name} is an async def task; run it on the asyncio pool (-P asyncio)"
                    )
            except Exception as exc:
                retval, error = None, exc
        return request, retval, error, time.perf_counter() - started, run.children

    def begin(self, request: TaskRequest) -> Outcome | None:
        """Before the task function: hooks and STARTED. An outcome means: do not run it.

        Pools that run the function themselves (an awaited coroutine) call this, the
        function inside :func:`~celeriac._model.running.running`, then :meth:`finish`.
        """
        if request.id in self.revoked:
            self._store(request, states.REVOKED, "revoked", None)
            self.lifecycle.task_revoked(request, "revoked", {"expired": False})
            if not request.message.embed.empty:
                after_task(self.app, request, states.REVOKED, None)
            return Outcome(request=request, state=states.REVOKED, reason="revoked")
        task = self.app.tasks[request.task]
        self.lifecycle.task_prerun(task, request)
        if task.options.track_started:
            self._store(request, states.STARTED, {"pid": os.getpid(), "hostname": request.hostname}, None)
        return None

    def begins_without_io(self, request: TaskRequest) -> bool:
        """Would :meth:`begin` do no I/O for ``request``, so an event loop may call it? True
        unless the request is revoked (REVOKED is stored), its task records STARTED, or a
        plugin has a ``task_prerun`` hook (which may block)."""
        task = self.app.tasks.get(request.task)
        return (
            task is not None
            and not task.options.track_started
            and request.id not in self.revoked
            and not self.lifecycle.implements("celeriac_task_prerun")
        )

    def finish_many(self, finished: Sequence[Finished]) -> list[Outcome]:
        """:meth:`finish` for several requests: with a store that can (:class:`BatchStore`),
        their SUCCESS records are saved in one call first, then each request's hooks and
        workflow run in turn, as ``finish`` runs them after its own record."""
        store = self.app.result_store if self.stores_results and len(finished) > 1 else None
        if not isinstance(store, BatchStore):
            return [self._finish_one(each, success_stored=False) for each in finished]
        records: list[ResultRecord] = []
        stored: list[bool] = []
        for request, retval, error, _, children in finished:
            record = None
            if error is None and self._keeps(request):
                # One that cannot be encoded is left to finish(), which fails the task.
                with contextlib.suppress(SerializationError):
                    record = self._record(request, states.SUCCESS, retval, None, children)
            if record is not None:
                records.append(record)
            stored.append(record is not None)
        if records:
            store.store_many(records)
        return [
            self._finish_one(each, success_stored=done) for each, done in zip(finished, stored, strict=True)
        ]

    def _finish_one(self, finished: Finished, *, success_stored: bool) -> Outcome:
        """:meth:`finish` for one request of a batch; an error outside its task (its callback
        could not be published ...) gives back this request's message, not the batch's."""
        return run_safely(lambda _: self.finish(*finished, success_stored=success_stored), finished[0])

    def finish(
        self,
        request: TaskRequest,
        retval: Any,
        error: Exception | None,
        runtime: float,
        children: Sequence[str] = (),
        *,
        success_stored: bool = False,
    ) -> Outcome:
        """After the task function: record what it returned (``retval``) or raised (``error``),
        continue its workflow and say what becomes of the message. ``success_stored``: the
        SUCCESS record was saved already (:meth:`finish_many`)."""
        task = self.app.tasks[request.task]
        lifecycle = self.lifecycle
        reason: str | None = None
        trace: str | None = None
        state = states.SUCCESS
        record: ResultRecord | None = None
        unstorable = False
        if error is None and not success_stored and self._keeps(request):
            try:
                record = self._record(request, state, retval, None, children)
            except SerializationError as exc:
                # As in Celery: a return value the result serializer cannot carry fails the
                # task, stored as FAILURE, rather than the message coming back to run again.
                error, unstorable = exc, True
        if isinstance(error, Replaced):
            state, reason = states.IGNORED, "replaced"
        elif isinstance(error, Ignore):
            state, reason = states.IGNORED, "ignored"
        elif error is not None:
            state, retval, trace = self._failed(task, request, error, may_retry=not unstorable)
            reason = f"{type(retval).__name__}: {retval}"
        if state == states.SUCCESS:
            if record is not None:
                self.app.result_store.store(record)
            lifecycle.task_success(task, request, retval)
            if log.isEnabledFor(logging.INFO):
                log.info("Task %s[%s] succeeded in %.4fs: %.200r", task.name, request.id, runtime, retval)
        if not request.message.embed.empty and reason != "replaced":
            # A replaced task's workflow moved to its replacement.
            after_task(self.app, request, state, retval)
        lifecycle.task_postrun(task, request, state, retval)
        disposition = Disposition.ACK
        if state == states.FAILURE and task.options.acks_late and not task.options.acks_on_failure_or_timeout:
            disposition = Disposition.DEAD_LETTER
        return Outcome(
            request=request,
            state=states.SUCCESS if state == states.IGNORED else state,
            disposition=disposition,
            runtime=runtime,
            reason=reason,
            traceback=trace,
            result=describe(retval) if self.describe_results and state == states.SUCCESS else None,
        )

    def _failed(
        self, task: Task[Any, Any], request: TaskRequest, exc: Exception, *, may_retry: bool = True
    ) -> tuple[str, BaseException, str]:
        """Record a retry or a failure; returns the state, the exception to report and its traceback."""
        if may_retry and self.autoretries(task, exc):
            try:
                task.bound(request).retry(exc=exc, countdown=retry_delay(task.options, request.retries))
            except Exception as raised:  # Retry, or MaxRetriesExceededError once the limit is reached
                exc = raised
        if isinstance(exc, Retry):
            cause = exc.exc or exc
            trace = format_traceback(cause)
            if not exc.recorded:
                self._store(request, states.RETRY, cause, trace)
            self.lifecycle.task_retry(task, request, cause)
            log.info("Task %s[%s] will retry: %r", task.name, request.id, cause)
            return states.RETRY, cause, trace
        trace = format_traceback(exc)
        self._store(request, states.FAILURE, exc, trace)
        self.lifecycle.task_failure(task, request, exc, trace)
        log.error("Task %s[%s] raised %s: %s\n%s", task.name, request.id, type(exc).__name__, exc, trace)
        return states.FAILURE, exc, trace

    @staticmethod
    def autoretries(task: Task[Any, Any], exc: Exception) -> bool:
        """Does ``autoretry_for`` (and not ``dont_autoretry_for``) match this exception?"""
        options = task.options
        return (
            not isinstance(exc, Retry)
            and bool(options.autoretry_for)
            and isinstance(exc, options.autoretry_for)
            and not (options.dont_autoretry_for and isinstance(exc, options.dont_autoretry_for))
        )

    def _store(
        self, request: TaskRequest, state: str, value: Any, trace: str | None, children: Sequence[str] = ()
    ) -> None:
        if self._keeps(request):
            self.app.result_store.store(self._record(request, state, value, trace, children))

    def _keeps(self, request: TaskRequest) -> bool:
        """Is a state of this request stored? As in Celery, an ignored result stores no
        state at all, failures included."""
        return self.stores_results and not request.message.ignore_result

    def _record(
        self, request: TaskRequest, state: str, value: Any, trace: str | None, children: Sequence[str]
    ) -> ResultRecord:
        return result_record(self.app, request, state, value, trace, children)


def result_record(
    app: Celeriac,
    request: TaskRequest,
    state: str,
    value: Any,
    trace: str | None,
    children: Sequence[str] = (),
) -> ResultRecord:
    """The record of one state of ``request``: for its reply queue, with its children."""
    extra = {"children": children_meta(list(children))} if children else {}
    return app.results.encode(request.id, state, value, trace, reply_to=request.message.reply_to, **extra)


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
