"""Running one task request: hooks, the task function, the stored result.

This runs wherever the pool runs requests (a thread, a child process), so results are
stored in parallel, and only the acknowledgement goes back to the consumer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import logging
import os
import time
import traceback
import warnings
from collections.abc import Container
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import overload

from attrs import frozen

from celeriac._client.pools import run_safely
from celeriac._client.task_options import retry_delay
from celeriac._client.workflow import after_task
from celeriac._contract.fork import after_fork
from celeriac._contract.protocols import BatchStore
from celeriac._contract.protocols import DeferredStore
from celeriac._contract.protocols import PendingWrite
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


@frozen
class _Failed:
    """What :meth:`Executor._failed` recorded: the state, the exception to report, its
    traceback, and the FAILURE record's write still under way (a deferred store)."""

    state: str
    error: BaseException
    trace: str
    written: PendingWrite | None = None


@frozen
class Finished:
    """A task function's run, waiting for :meth:`Executor.finish` to record it.

    :param retval: what the function returned (None if it raised).
    :param error: what it raised, or None.
    :param runtime: seconds the function ran.
    :param children: ids of the tasks it sent.
    """

    request: TaskRequest
    retval: Any
    error: Exception | None
    runtime: float
    children: Sequence[str] = ()


class Executor:
    """Executes requests for the tasks registered with ``app``, in three steps every pool uses:
    :meth:`begin` (hooks, STARTED; an outcome means do not run), :meth:`run` (the task
    function) or the pool's own run of it (an awaited coroutine), and :meth:`finish` (results,
    hooks, workflow) for one request or a batch. Calling the executor does all three for one
    request, which is all a pool that runs functions on threads needs.

    :param defer_writes: hand final records to the app's store without waiting for the write
        when it is a :class:`DeferredStore` (whoever settles the outcomes waits for
        ``Outcome.written``: the worker's settler does), in this process only.
    :param hand_to: hand final records to this instead, in any process: a pool's child
        whose records cross to the worker with its reports (prefork), which writes them.
    """

    def __init__(
        self,
        app: Celeriac,
        *,
        revoked: Container[str] = frozenset(),
        describe_results: bool = False,
        defer_writes: bool = False,
        hand_to: DeferredStore | None = None,
    ) -> None:
        self.app = app
        #: Put a short repr of each return value in the outcome (for task-succeeded events).
        self.describe_results = describe_results
        #: Ids revoked while their request waited in the pool: checked again just before running.
        self.revoked = revoked
        self.lifecycle = app.plugins.lifecycle
        self.stores_results = app.result_store_url is not None
        #: The store that takes final records without waiting for the write, when whoever
        #: settles this executor's outcomes waits for ``Outcome.written`` (the worker's
        #: settler does). Only in this process: a pool's child forked from it, whose outcomes
        #: cross to the parent as fields, writes them before it reports.
        self._deferred: DeferredStore | None = None
        if hand_to is not None:
            self._deferred = hand_to  # the pool arranged it for its children: no reset
        elif defer_writes and self.stores_results and isinstance(app.result_store, DeferredStore):
            self._deferred = app.result_store
            after_fork(self, Executor._write_at_once)

    def __call__(self, request: TaskRequest) -> Outcome:
        """Run ``request`` here: :meth:`begin`, :meth:`run`, :meth:`finish`."""
        early = self.begin(request)
        if early is not None:
            return early
        return self._record_one(self.run(request), success_stored=False)

    def run(self, request: TaskRequest) -> Finished:
        """The task function alone, inside :func:`~celeriac.plugin.running`: what
        :meth:`finish` takes."""
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
        return Finished(request, retval, error, time.perf_counter() - started, run.children)

    def begin(self, request: TaskRequest) -> Outcome | None:
        """Before the task function: hooks and STARTED. An outcome means: do not run it.

        Pools that run the function themselves (an awaited coroutine) call this, the
        function inside :func:`~celeriac.plugin.running`, then :meth:`finish`.
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

    @overload
    def finish(self, finished: Sequence[Finished]) -> list[Outcome]: ...

    @overload
    def finish(
        self,
        finished: TaskRequest,
        retval: Any,
        error: Exception | None,
        runtime: float,
        children: Sequence[str] = (),
        *,
        success_stored: bool = False,
    ) -> Outcome: ...

    def finish(
        self,
        finished: Sequence[Finished] | TaskRequest,
        retval: Any = None,
        error: Exception | None = None,
        runtime: float = 0.0,
        children: Sequence[str] = (),
        *,
        success_stored: bool = False,
    ) -> list[Outcome] | Outcome:
        """After the task functions: record what each returned or raised, continue its
        workflow and say what becomes of its message. With a store that can
        (:class:`BatchStore`), the SUCCESS records of a batch are saved in one call first,
        then each request's hooks and workflow run in turn. An error outside a task (its
        callback could not be published ...) gives back that request's message alone.

        The form of plugin API 1.0, ``finish(request, retval, error, runtime, children)``
        for one request, still works, with a DeprecationWarning.
        """
        if isinstance(finished, TaskRequest):
            warnings.warn(
                "Executor.finish(request, retval, ...) is deprecated; pass a list of Finished records",
                DeprecationWarning,
                stacklevel=2,
            )
            one = Finished(finished, retval, error, runtime, children)
            return self._record_one(one, success_stored=success_stored)
        store = self.app.result_store if self.stores_results and len(finished) > 1 else None
        if not isinstance(store, BatchStore):
            return [self._finish_one(each, success_stored=False) for each in finished]
        records: list[ResultRecord] = []
        stored: list[bool] = []
        for each in finished:
            record = None
            if each.error is None and self._keeps(each.request):
                # One that cannot be encoded is left to _record_one(), which fails the task.
                with contextlib.suppress(SerializationError):
                    record = self._record(each.request, states.SUCCESS, each.retval, None, each.children)
            if record is not None:
                records.append(record)
            stored.append(record is not None)
        if records:
            store.store_many(records)
        return [
            self._finish_one(each, success_stored=done) for each, done in zip(finished, stored, strict=True)
        ]

    def call(self, request: TaskRequest) -> Finished:
        """Deprecated (plugin API 1.1): :meth:`run`."""
        warnings.warn("Executor.call is deprecated; use Executor.run", DeprecationWarning, stacklevel=2)
        return self.run(request)

    def finish_many(self, finished: Sequence[Finished]) -> list[Outcome]:
        """Deprecated (plugin API 1.1): :meth:`finish`, which takes a batch."""
        warnings.warn(
            "Executor.finish_many is deprecated; use Executor.finish", DeprecationWarning, stacklevel=2
        )
        return self.finish(finished)

    def _finish_one(self, finished: Finished, *, success_stored: bool) -> Outcome:
        return run_safely(
            lambda _: self._record_one(finished, success_stored=success_stored), finished.request
        )

    def _record_one(self, finished: Finished, *, success_stored: bool) -> Outcome:
        """One request's part of :meth:`finish`; ``success_stored``: its SUCCESS record was
        saved already, with its batch's."""
        request, retval, error, runtime = finished.request, finished.retval, finished.error, finished.runtime
        children = finished.children
        task = self.app.tasks[request.task]
        lifecycle = self.lifecycle
        reason: str | None = None
        trace: str | None = None
        state = states.SUCCESS
        unstorable = False
        written: PendingWrite | None = None
        if error is None and not success_stored and self._keeps(request):
            try:
                written = self._store_final(request, self._record(request, state, retval, None, children))
            except SerializationError as exc:
                # As in Celery: a return value the result serializer cannot carry fails the
                # task, stored as FAILURE, rather than the message coming back to run again;
                # so does one the store refuses to keep (too large: kvstore.ValueRefusedError).
                error, unstorable = exc, True
        if isinstance(error, Replaced):
            state, reason = states.IGNORED, "replaced"
        elif isinstance(error, Ignore):
            state, reason = states.IGNORED, "ignored"
        elif error is not None:
            failed = self._failed(task, request, error, may_retry=not unstorable)
            state, retval, trace, written = failed.state, failed.error, failed.trace, failed.written
            reason = f"{type(retval).__name__}: {retval}"
        if state == states.SUCCESS:
            lifecycle.task_success(task, request, retval)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "Task %s[%s] succeeded in %s: %.200r",
                    request.message.shadow or task.name,
                    request.id,
                    format_runtime(runtime),
                    retval,
                )
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
            written=written,
        )

    def _failed(
        self, task: Task[Any, Any], request: TaskRequest, exc: Exception, *, may_retry: bool = True
    ) -> _Failed:
        """Record a retry or a failure. RETRY is written before this returns: the rerun,
        maybe in another process, must not have its states overtaken by this one."""
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
            log.info(
                "Task %s[%s] will retry %s: %r",
                request.message.shadow or task.name,
                request.id,
                retry_time(exc.when),
                cause,
            )
            return _Failed(states.RETRY, cause, trace)
        trace = format_traceback(exc)
        written = self._store(request, states.FAILURE, exc, trace, final=True)
        self.lifecycle.task_failure(task, request, exc, trace)
        log.error(
            "Task %s[%s] raised %s: %s\n%s",
            request.message.shadow or task.name,
            request.id,
            type(exc).__name__,
            exc,
            trace,
        )
        return _Failed(states.FAILURE, exc, trace, written)

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
        self,
        request: TaskRequest,
        state: str,
        value: Any,
        trace: str | None,
        children: Sequence[str] = (),
        *,
        final: bool = False,
    ) -> PendingWrite | None:
        """Store a state if this request's are kept; ``final``: maybe handed over (see
        :meth:`_store_final`), the write to wait for returned."""
        if not self._keeps(request):
            return None
        record = self._record(request, state, value, trace, children)
        if final:
            return self._store_final(request, record)
        self.app.result_store.store(record)
        return None

    def _store_final(self, request: TaskRequest, record: ResultRecord) -> PendingWrite | None:
        """Store a final state: handed over without waiting when the store and the settler
        allow (the write to wait for is returned), else written before this returns. A task
        with a workflow to continue writes first: were the write to fail after its callbacks
        went out, its rerun would send them again."""
        if self._deferred is not None and request.message.embed.empty:
            return self._deferred.store_deferred(record)
        self.app.result_store.store(record)
        return None

    def _write_at_once(self) -> None:
        """In a process forked from this one: records are written before outcomes return."""
        self._deferred = None

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


def format_runtime(seconds: float) -> str:
    """A task's run time for the log: seconds to the millisecond, microseconds below one
    (a fast task would otherwise read ``0.0000s``)."""
    if seconds >= 0.001:
        return f"{seconds:.3f}s"
    return f"{seconds * 1_000_000:.0f}\N{MICRO SIGN}s"


def retry_time(when: float | dt.datetime | None) -> str:
    """When a retry runs, for the log: ``in 5s``, ``at 2026-12-06T03:00:00+00:00`` or ``now``."""
    if isinstance(when, dt.datetime):
        return f"at {when.isoformat()}"
    if when:
        return f"in {when:g}s"
    return "now"
