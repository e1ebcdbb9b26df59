"""The asyncio pool: ``async def`` tasks on one event loop, plain tasks on a few threads.

Coroutines run on one loop thread, up to ``worker.concurrency`` at once; requests beyond
that wait in this pool (so ``cancel_pending`` can give them back). Blocking bookkeeping
(``on_start``'s early ack, hooks, storing results) runs on a small thread pool beside the
loop, so the loop only ever awaits. Plain ``def`` tasks of the same app never touch the loop:
``[asyncio] sync_threads`` daemon threads run them with the kernel's executor, as the
threads pool would.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from typing import final

from celeriac.plugin import Executor
from celeriac.plugin import Finished
from celeriac.plugin import Job
from celeriac.plugin import Outcome
from celeriac.plugin import TaskRequest
from celeriac.plugin import TimeLimitExceededError
from celeriac.plugin import run_safely
from celeriac.plugin import running
from celeriac.plugin import time_limits
from celeriac_asyncio._config import AsyncioConfig
from celeriac_asyncio._interrupt import Interruptible
from celeriac_asyncio._interrupt import Limits

log = logging.getLogger("celeriac.worker")
#: Threads for the blocking bookkeeping of coroutines (results, hooks, acks): short calls.
BOOKKEEPING_THREADS = 8
#: The smallest part of a batch of finished coroutines given to one bookkeeping thread.
MIN_PART = 128


@final
class AsyncioPool:
    """Runs the requests of ``async def`` tasks concurrently on one event loop.

    :param execute: the kernel's executor; requests of plain tasks go straight to it (on a
        thread); for coroutines its app, hooks and result store are used around the await.
    :param concurrency: coroutines in flight at once.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        concurrency: int,
        settings: AsyncioConfig | None = None,
    ) -> None:
        settings = settings or AsyncioConfig()
        self._execute = executor
        self._executor = executor
        self._limit = max(1, concurrency)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # pending, running or idleness changed
        self._pending: collections.deque[Job] = collections.deque()
        self._sync_pending: collections.deque[Job] = collections.deque()
        self._in_flight = 0  # coroutine requests started and not finished
        self._sync_busy = 0
        self._stopping = False
        self._running: dict[asyncio.Task[Outcome], tuple[Job, Limits]] = {}  # the loop's own
        self._pump_due = False  # a _pump is scheduled on the loop and has not started yet
        #: Coroutines done and waiting for their bookkeeping (the loop's own), and whether
        #: a flush of them is scheduled: finished together, stored together.
        self._to_finish: list[tuple[Finished, asyncio.Future[Outcome]]] = []
        self._flush_due = False
        self._is_async: dict[str, bool] = {}
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._run_loop, name="celeriac-asyncio", daemon=True)
        self._bookkeeping = concurrent.futures.ThreadPoolExecutor(
            BOOKKEEPING_THREADS, thread_name_prefix="celeriac-asyncio-io"
        )
        self._sync_threads = [
            threading.Thread(target=self._run_sync, name=f"celeriac-asyncio-sync-{n}", daemon=True)
            for n in range(max(1, settings.sync_threads))
        ]

    # --- the Pool protocol ----------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    def start(self) -> None:
        self._loop_thread.start()
        for thread in self._sync_threads:
            thread.start()

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        job = Job(request, on_start, on_done)
        if self._coroutine_task(request.task):
            with self._lock:
                self._pending.append(job)
                wake, self._pump_due = not self._pump_due, True
            if wake:  # one wake-up of the loop for a burst of submissions, not one each
                self._loop.call_soon_threadsafe(self._pump)
        else:
            with self._changed:
                self._sync_pending.append(job)
                self._changed.notify_all()

    def cancel_pending(self) -> list[TaskRequest]:
        with self._lock:
            jobs = [*self._pending, *self._sync_pending]
            self._pending.clear()
            self._sync_pending.clear()
        return [job.request for job in jobs]

    def stop(self, *, wait: bool) -> None:
        """Warm: finish what runs and waits. Cold: cancel coroutines (nothing is recorded,
        the consumer gives the messages back); plain tasks cannot be interrupted."""
        with self._changed:
            self._stopping = True
            if not wait:
                self._pending.clear()
                self._sync_pending.clear()
            self._changed.notify_all()
            while wait and (self._pending or self._sync_pending or self._in_flight or self._sync_busy):
                self._changed.wait(0.1)
        if not wait:
            self._loop.call_soon_threadsafe(self._abandon_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=10)
        self._bookkeeping.shutdown(wait=wait, cancel_futures=not wait)
        if wait:
            for thread in self._sync_threads:
                thread.join()

    def stats(self) -> dict[str, Any]:
        """Figures for ``inspect stats``."""
        with self._lock:
            return {
                "pool": "asyncio",
                "max-concurrency": self._limit,
                "coroutines": self._in_flight,
                "pending": len(self._pending),
                "sync-threads": len(self._sync_threads),
                "sync-busy": self._sync_busy,
                "sync-pending": len(self._sync_pending),
            }

    # --- the loop thread --------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            # Coroutines still there were abandoned by a cold stop: let them unwind briefly.
            leftover = asyncio.all_tasks(self._loop)
            for task in leftover:
                task.cancel()
            if leftover:
                self._loop.run_until_complete(asyncio.wait(leftover, timeout=1.0))
        finally:
            self._loop.close()

    def _pump(self) -> None:
        """Start waiting coroutine requests while there is room."""
        with self._lock:
            self._pump_due = False
        while True:
            with self._lock:
                if self._stopping and not self._pending:
                    return
                if not self._pending or self._in_flight >= self._limit:
                    return
                job = self._pending.popleft()
                self._in_flight += 1
            limits = Limits(*time_limits(self._executor.app, job.request))
            task = self._loop.create_task(self._run(job, limits))
            self._running[task] = (job, limits)
            task.add_done_callback(self._finished)

    async def _run(self, job: Job, limits: Limits) -> Outcome:
        loop = asyncio.get_running_loop()
        request = job.request
        if self._quick_start(request):
            skipped = self._begin(job)  # no I/O to do: spare the loop two thread hops
        else:
            skipped = await loop.run_in_executor(self._bookkeeping, self._begin, job)
        if skipped is not None:
            return skipped
        me = asyncio.current_task()
        assert me is not None
        timers = [
            loop.call_later(seconds, _fire, limits, kind, me)
            for kind, seconds in (("soft", limits.soft), ("hard", limits.hard))
            if seconds
        ]
        started = time.perf_counter()
        retval: Any = None
        error: BaseException | None = None
        with running(request) as run:
            try:
                retval = await Interruptible(self._executor.app.tasks[request.task].run(request), limits)
            except asyncio.CancelledError as exc:
                if limits.abandoned or not limits.hard_fired:
                    raise
                error = TimeLimitExceededError(f"hard time limit ({limits.hard:g} s) exceeded; cancelled")
                error.__cause__ = exc
            except BaseException as exc:
                error = exc
            finally:
                for timer in timers:
                    timer.cancel()
        if limits.hard_fired and error is None:
            log.warning("Task %s[%s] ignored its hard time limit's cancellation", request.task, request.id)
            error = TimeLimitExceededError(f"hard time limit ({limits.hard:g} s) exceeded")
        runtime = time.perf_counter() - started
        if error is not None and not isinstance(error, Exception):
            raise error  # not a task failure (KeyboardInterrupt ...): the pool requeues
        return await self._finish_soon(Finished(request, retval, error, runtime, run.children))

    def _finish_soon(self, finished: Finished) -> asyncio.Future[Outcome]:
        """Queue a coroutine's bookkeeping (its result, hooks, workflow) for the next flush:
        all that finish in one turn of the loop go to a bookkeeping thread together, their
        results stored in one round trip where the store can."""
        future = self._loop.create_future()
        self._to_finish.append((finished, future))
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """Hand the coroutines that finished in this turn to the bookkeeping threads: a large
        batch in up to one part per thread, so that their workflows (each step a publish)
        and hooks still run in parallel, each part's results stored in one round trip."""
        batch, self._to_finish, self._flush_due = self._to_finish, [], False
        size = max(MIN_PART, -(-len(batch) // BOOKKEEPING_THREADS))
        for start in range(0, len(batch), size):
            self._finish_part(batch[start : start + size])

    def _finish_part(self, part: list[tuple[Finished, asyncio.Future[Outcome]]]) -> None:
        futures = [future for _, future in part]
        try:
            done = self._loop.run_in_executor(
                self._bookkeeping, self._executor.finish, [finished for finished, _ in part]
            )
        except RuntimeError as exc:  # the bookkeeping threads are gone (a stop): give them back
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        done.add_done_callback(lambda done: _settle(done, futures))

    def _quick_start(self, request: TaskRequest) -> bool:
        """Can the request start on the loop itself? Only when starting it does no I/O: the
        executor's part (see ``Executor.begins_without_io``), and the consumer's, which
        acknowledges an early-acked task as it starts."""
        task = self._executor.app.tasks.get(request.task)
        return task is not None and task.options.acks_late and self._executor.begins_without_io(request)

    def _begin(self, job: Job) -> Outcome | None:
        try:
            job.on_start(job.request)
        except Exception:
            log.exception("on_start failed for %s[%s]; running it anyway", job.request.task, job.request.id)
        return self._executor.begin(job.request)

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        job, limits = self._running.pop(task)
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()
        if task.cancelled() or limits.abandoned:
            return
        error = task.exception()
        # As run_safely: an error outside the task (the result store is down) gives the
        # message back rather than lose it.
        outcome = task.result() if error is None else run_safely(_raiser(error), job.request)
        try:
            job.on_done(outcome)
        except Exception:
            log.exception("on_done failed for %s[%s]", job.request.task, job.request.id)
        self._pump()

    def _abandon_all(self) -> None:
        for task, (_, limits) in list(self._running.items()):
            limits.abandoned = True
            task.cancel()

    # --- plain tasks --------------------------------------------------------------------

    def _run_sync(self) -> None:
        while True:
            with self._changed:
                while not self._sync_pending and not self._stopping:
                    self._changed.wait()
                if not self._sync_pending:
                    return
                job = self._sync_pending.popleft()
                self._sync_busy += 1
            try:
                job.on_start(job.request)
            except Exception:
                log.exception("on_start failed for %s[%s]", job.request.task, job.request.id)
            outcome = run_safely(self._execute, job.request)
            with self._changed:
                self._sync_busy -= 1
                self._changed.notify_all()
            job.on_done(outcome)

    # --- helpers ------------------------------------------------------------------------

    def _coroutine_task(self, name: str) -> bool:
        known = self._is_async.get(name)
        if known is None:
            task = self._executor.app.tasks.get(name)
            known = task is not None and inspect.iscoroutinefunction(task.fn)
            self._is_async[name] = known
        return known


def _settle(done: asyncio.Future[list[Outcome]], futures: list[asyncio.Future[Outcome]]) -> None:
    """Hand each coroutine waiting on a flush its outcome, or the flush's error."""
    error = None if done.cancelled() else done.exception()
    outcomes = done.result() if error is None and not done.cancelled() else None
    for index, future in enumerate(futures):
        if future.done():  # cancelled meanwhile (a cold stop)
            continue
        if outcomes is not None:
            future.set_result(outcomes[index])
        elif error is not None:
            future.set_exception(error)
        else:
            future.cancel()


def _fire(limits: Limits, kind: str, task: asyncio.Task[Any]) -> None:
    if kind == "soft":
        limits.soft_fired = True
    else:
        limits.hard_fired = True
    task.cancel(f"{kind} time limit exceeded")


def _raiser(error: BaseException) -> Callable[[TaskRequest], Outcome]:
    def execute(request: TaskRequest) -> Outcome:
        raise error

    return execute
