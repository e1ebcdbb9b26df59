"""The eventlet pool: each request on its own green thread, up to ``worker.concurrency`` at once.

The worker must run with the standard library patched (``celeriac-eventlet ... worker -P
eventlet``): then the worker's threads are green threads too, everything runs on one OS
thread, and a task that waits on a socket or ``time.sleep`` lets the others run. Time limits
are ``eventlet.Timeout``: they fire when the task next yields to the hub (any patched
blocking call), never inside a stretch of pure computation.

The shape follows celeriac-gevent's pool: one queue of pending jobs, green threads that take
the next one when theirs is done, and results stored in batches by a flusher.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac import states
from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import Disposition
from celeriac.plugin import Executor
from celeriac.plugin import Finished
from celeriac.plugin import Job
from celeriac.plugin import Outcome
from celeriac.plugin import PoolSpec
from celeriac.plugin import SoftTimeLimitExceededError
from celeriac.plugin import TaskRequest
from celeriac.plugin import TimeLimitExceededError
from celeriac.plugin import hookimpl
from celeriac.plugin import run_safely
from celeriac.plugin import time_limits

if TYPE_CHECKING:
    from eventlet.event import Event
    from eventlet.greenthread import GreenThread

    from celeriac.plugin import Celeriac

__all__ = ["EventletPool", "celeriac_add_pools"]

log = logging.getLogger("celeriac.worker")
#: A batch of finished requests is finished in up to this many parts at once...
FLUSH_PARTS = 8
#: ...of at least this many requests each.
MIN_PART = 128
#: Seconds a cold stop gives each killed green thread to unwind.
KILL_TIMEOUT = 5.0


class _HardLimit(BaseException):
    """Raised into a green thread at its hard time limit; the executor's ``except Exception`` lets it by."""


@final
class EventletPool:
    """Green threads pulling requests from one queue, so none waits while another is free.

    Every method runs on the one OS thread of a patched worker, and none of them yields to
    the hub between reading and changing the pool's state, so no lock is needed.
    """

    def __init__(
        self, execute: Callable[[TaskRequest], Outcome], *, concurrency: int, app: Celeriac | None = None
    ) -> None:
        self._execute = execute
        self._executor = execute if isinstance(execute, Executor) else None
        self._app = app
        self._limit = max(1, concurrency)
        self._pending: collections.deque[Job] = collections.deque()
        self._threads: set[GreenThread] = set()
        self._active = 0  # green threads running _work: the ones that will take pending jobs
        self._cold = False
        #: Requests whose function returned, waiting for a flush to store their results
        #: together (one round trip, one connection), each with what its green thread waits on.
        self._to_finish: list[tuple[Finished, Event]] = []
        self._flush_due = False

    @property
    def limit(self) -> int:
        return self._limit

    def start(self) -> None:
        """Nothing to start: green threads are spawned as requests arrive."""

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        job = Job(request, on_start, on_done)
        # Counted here and uncounted by _work itself, not by a link callback, which runs
        # later: a request arriving in between would wait with no green thread left.
        if self._active < self._limit and not self._pending:
            self._active += 1
            self._spawn(self._work, job)
        else:
            self._pending.append(job)

    def cancel_pending(self) -> list[TaskRequest]:
        cancelled = [job.request for job in self._pending]
        self._pending.clear()
        return cancelled

    def stop(self, *, wait: bool) -> None:
        import eventlet

        if wait:
            while self._threads:
                for thread in list(self._threads):
                    thread.wait()  # _work and _flush catch everything a task raises
            return
        self._cold = True
        self._pending.clear()
        for thread in list(self._threads):
            with eventlet.Timeout(KILL_TIMEOUT, False):
                thread.kill()

    def stats(self) -> dict[str, Any]:
        return {"pool": "eventlet", "max-concurrency": self._limit, "running": self._active}

    def _work(self, job: Job | None) -> None:
        try:
            while job is not None:
                outcome = self._run(job)
                try:
                    job.on_done(outcome)
                except Exception:
                    log.exception("on_done failed for %s[%s]", job.request.task, job.request.id)
                job = self._pending.popleft() if self._pending and not self._cold else None
        finally:
            # No yield between the empty-queue check above and this: green threads are cooperative.
            self._active -= 1

    def _run(self, job: Job) -> Outcome:
        import eventlet
        from greenlet import GreenletExit

        request = job.request
        hard, soft = time_limits(self._app, request)
        try:
            job.on_start(request)
        except Exception:
            log.exception("on_start failed for %s[%s]; running it anyway", request.task, request.id)
        executor = self._executor
        timers: list[eventlet.Timeout] = []
        try:
            if executor is not None:
                early = executor.begin(request)
                if early is not None:
                    return early
            # An eventlet.Timeout starts when it is made: made here, it covers the function only.
            if soft:
                exc = SoftTimeLimitExceededError(f"soft time limit ({soft:g} s) exceeded")
                timers.append(eventlet.Timeout(soft, exc))
            if hard:
                timers.append(eventlet.Timeout(hard, _HardLimit()))
            try:
                if executor is None:
                    return self._execute(request)
                finished = executor.call(request)
            finally:
                for timer in timers:
                    timer.cancel()
            return self._finish_soon(finished)
        except _HardLimit:
            return self._timed_out(request, hard or 0.0)
        except GreenletExit:
            raise  # killed by a cold stop: abandoned, the consumer gives the message back
        except BaseException as exc:
            # As run_safely: an error outside the task gives the message back.
            return run_safely(_raiser(exc), request)

    def _finish_soon(self, finished: Finished) -> Outcome:
        """Wait for the next flush to store this result with the others that finished
        meanwhile: a thousand green threads waking together share a few round trips, not a
        thousand connections."""
        from eventlet.event import Event

        waiter: Event = Event()
        self._to_finish.append((finished, waiter))
        if not self._flush_due:
            self._flush_due = True
            self._spawn(self._flush)  # runs once the green threads woken with this one have run
        outcome: Outcome = waiter.wait()
        return outcome

    def _spawn(self, function: Callable[..., None], *args: Any) -> None:
        """A green thread of this pool (a request's or a flush's): a warm stop waits for it,
        a cold one kills it."""
        import eventlet

        thread = eventlet.spawn(function, *args)
        self._threads.add(thread)
        thread.link(self._threads.discard)

    def _flush(self) -> None:
        """Finish what returned meanwhile: a large batch in parts, each on a green thread of
        its own, so that their workflows (each step a publish) and hooks still interleave."""
        batch, self._to_finish, self._flush_due = self._to_finish, [], False
        size = max(MIN_PART, -(-len(batch) // FLUSH_PARTS))
        parts = [batch[start : start + size] for start in range(0, len(batch), size)]
        for part in parts[1:]:
            self._spawn(self._finish_part, part)
        self._finish_part(parts[0])

    def _finish_part(self, part: list[tuple[Finished, Event]]) -> None:
        assert self._executor is not None
        try:
            outcomes = self._executor.finish_many([finished for finished, _ in part])
        except BaseException as exc:  # each waiting green thread gives its message back
            for _, waiter in part:
                waiter.send_exception(exc)
            return
        for (_, waiter), outcome in zip(part, outcomes, strict=True):
            waiter.send(outcome)

    def _timed_out(self, request: TaskRequest, hard: float) -> Outcome:
        """Record the hard limit's failure as the executor would have; the task did not finish."""
        exc = TimeLimitExceededError(f"hard time limit ({hard:g} s) exceeded")
        log.error("Task %s[%s] raised %s: %s", request.task, request.id, type(exc).__name__, exc)
        app = self._app
        task = app.tasks.get(request.task) if app is not None else None
        if app is not None and app.result_store_url is not None and not request.message.ignore_result:
            app.result_store.store(app.results.encode(request.id, states.FAILURE, exc, None))
        if app is not None and task is not None:
            app.plugins.lifecycle.task_failure(task, request, exc, "")
        failed = Disposition.ACK
        if task is not None and task.options.acks_late and not task.options.acks_on_failure_or_timeout:
            failed = Disposition.DEAD_LETTER
        return Outcome(
            request=request, state=states.FAILURE, disposition=failed, reason=f"TimeLimitExceededError: {exc}"
        )


def _raiser(error: BaseException) -> Callable[[TaskRequest], Outcome]:
    def execute(request: TaskRequest) -> Outcome:
        raise error

    return execute


def _make_pool(config: Config, execute: Callable[[TaskRequest], Outcome]) -> EventletPool:
    from eventlet import patcher

    if not (patcher.is_monkey_patched("socket") and patcher.is_monkey_patched("thread")):
        raise ConfigError(
            "the eventlet pool needs the standard library patched before anything is imported: "
            "start the worker with 'celeriac-eventlet ... worker -P eventlet' "
            "(or 'python -m celeriac_eventlet ... worker -P eventlet')"
        )
    return EventletPool(
        execute,
        concurrency=config.worker.concurrency,
        app=execute.app if isinstance(execute, Executor) else None,
    )


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    description = "green threads (start with celeriac-eventlet)"
    return [PoolSpec(name="eventlet", factory=_make_pool, description=description)]
