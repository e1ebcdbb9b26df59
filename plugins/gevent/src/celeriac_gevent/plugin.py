"""The gevent pool: each request on its own greenlet, up to ``worker.concurrency`` at once.

The worker must run with the standard library patched (``celeriac-gevent ... worker -P
gevent``): then the worker's threads are greenlets too, everything runs on one OS thread, and
a task that waits on a socket or ``time.sleep`` lets the others run. Time limits are
``gevent.Timeout``: they fire when the task next yields to the hub (any patched blocking
call), never inside a stretch of pure computation.
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
from celeriac.plugin import ConfigError
from celeriac.plugin import Disposition
from celeriac.plugin import Executor
from celeriac.plugin import Finished
from celeriac.plugin import Job
from celeriac.plugin import Outcome
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import SoftTimeLimitExceededError
from celeriac.plugin import TaskRequest
from celeriac.plugin import TimeLimitExceededError
from celeriac.plugin import hookimpl
from celeriac.plugin import run_safely
from celeriac.plugin import time_limits

if TYPE_CHECKING:
    import gevent
    from gevent.event import AsyncResult


__all__ = ["GeventPool", "celeriac_add_pools"]

log = logging.getLogger("celeriac.worker")
#: A batch of finished requests is finished in up to this many parts at once...
FLUSH_PARTS = 8
#: ...of at least this many requests each.
MIN_PART = 128


class _HardLimit(BaseException):
    """Raised into a greenlet at its hard time limit; the executor's ``except Exception`` lets it by."""


@final
class GeventPool:
    """Greenlets pulling requests from one queue, so none waits while another is free.

    Every method runs on the one OS thread of a patched worker, and none of them yields to
    the hub between reading and changing the pool's state, so no lock is needed.
    """

    def __init__(self, executor: Executor, *, concurrency: int) -> None:
        self._executor = executor
        self._app = executor.app
        self._limit = max(1, concurrency)
        self._pending: collections.deque[Job] = collections.deque()
        self._greenlets: set[gevent.Greenlet[Any, Any]] = set()
        self._active = 0  # greenlets running _work: the ones that will take pending jobs
        self._stopping = False
        self._cold = False
        #: Requests whose function returned, waiting for a flush to store their results
        #: together (one round trip, one connection), each with what its greenlet waits on.
        self._to_finish: list[tuple[Finished, AsyncResult[Outcome]]] = []
        self._flush_due = False

    @property
    def limit(self) -> int:
        return self._limit

    def start(self) -> None:
        """Nothing to start: greenlets are spawned as requests arrive."""

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        job = Job(request, on_start, on_done)
        # Counted here and uncounted by _work itself, not by the greenlet's link callback,
        # which runs later: a request arriving in between would wait with no greenlet left.
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
        import gevent

        self._stopping = True
        if wait:
            while self._greenlets:
                gevent.joinall(list(self._greenlets))
        else:
            self._cold = True
            self._pending.clear()
            gevent.killall(list(self._greenlets), timeout=5)

    def stats(self) -> dict[str, Any]:
        return {"pool": "gevent", "max-concurrency": self._limit, "running": self._active}

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
            # No yield between the empty-queue check above and this: greenlets are cooperative.
            self._active -= 1

    def _run(self, job: Job) -> Outcome:
        import gevent

        request = job.request
        hard, soft = time_limits(self._app, request)
        try:
            job.on_start(request)
        except Exception:
            log.exception("on_start failed for %s[%s]; running it anyway", request.task, request.id)
        timers = []
        if soft:
            exc = SoftTimeLimitExceededError(f"soft time limit ({soft:g} s) exceeded")
            timers.append(gevent.Timeout(soft, exc))
        if hard:
            timers.append(gevent.Timeout(hard, _HardLimit()))
        executor = self._executor
        try:
            early = executor.begin(request)
            if early is not None:
                return early
            for timer in timers:
                timer.start()
            try:
                finished = executor.run(request)
            finally:
                for timer in timers:
                    timer.close()
            return self._finish_soon(finished)
        except _HardLimit:
            return self._timed_out(request, hard or 0.0)
        except gevent.GreenletExit:
            raise  # killed by a cold stop: abandoned, the consumer gives the message back
        except BaseException as exc:
            # As run_safely: an error outside the task gives the message back.
            return run_safely(_raiser(exc), request)

    def _finish_soon(self, finished: Finished) -> Outcome:
        """Wait for the next flush to store this result with the others that finished
        meanwhile: a thousand greenlets waking together share a few round trips, not a
        thousand connections."""
        from gevent.event import AsyncResult

        waiter: AsyncResult[Outcome] = AsyncResult()
        self._to_finish.append((finished, waiter))
        if not self._flush_due:
            self._flush_due = True
            self._spawn(self._flush)  # starts once the greenlets woken with this one have run
        outcome: Outcome = waiter.get()
        return outcome

    def _spawn(self, function: Callable[..., None], *args: Any) -> None:
        """A greenlet of this pool (a request's or a flush's): a warm stop waits for it, a
        cold one kills it."""
        import gevent

        greenlet = gevent.spawn(function, *args)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)

    def _flush(self) -> None:
        """Finish what returned meanwhile: a large batch in parts, each on a greenlet of its
        own, so that their workflows (each step a publish) and hooks still interleave."""
        batch, self._to_finish, self._flush_due = self._to_finish, [], False
        size = max(MIN_PART, -(-len(batch) // FLUSH_PARTS))
        parts = [batch[start : start + size] for start in range(0, len(batch), size)]
        for part in parts[1:]:
            self._spawn(self._finish_part, part)
        self._finish_part(parts[0])

    def _finish_part(self, part: list[tuple[Finished, AsyncResult[Outcome]]]) -> None:
        try:
            outcomes = self._executor.finish([finished for finished, _ in part])
        except BaseException as exc:  # each waiting greenlet gives its message back
            for _, waiter in part:
                waiter.set_exception(exc)
            return
        for (_, waiter), outcome in zip(part, outcomes, strict=True):
            waiter.set(outcome)

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


def _make_pool(context: PoolContext) -> GeventPool:
    from gevent import monkey

    if not (monkey.is_module_patched("socket") and monkey.is_module_patched("threading")):
        raise ConfigError(
            "the gevent pool needs the standard library patched before anything is imported: "
            "start the worker with 'celeriac-gevent ... worker -P gevent' "
            "(or 'python -m celeriac_gevent ... worker -P gevent')"
        )
    return GeventPool(context.executor, concurrency=context.concurrency)


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    return [PoolSpec(name="gevent", factory=_make_pool, description="greenlets (start with celeriac-gevent)")]
