"""celeriac-threads: run task requests on a fixed set of threads pulling from one queue."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from collections.abc import Sequence

from celeriac.plugin import Job
from celeriac.plugin import Outcome
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.plugin import run_safely

__all__ = ["ThreadPool", "celeriac_add_pools"]

log = logging.getLogger(__name__)


class ThreadPool:
    """``worker.concurrency`` threads sharing one FIFO of requests.

    A shared queue (rather than one per thread) gives fair dispatch: a free thread takes
    the next request whatever the others are doing.
    """

    def __init__(self, concurrency: int, execute: Callable[[TaskRequest], Outcome]) -> None:
        self._limit = max(1, concurrency)
        self._execute = execute
        self._pending: collections.deque[Job] = collections.deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"celeriac-thread-{n}", daemon=True)
            for n in range(self._limit)
        ]

    @property
    def limit(self) -> int:
        return self._limit

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        with self._ready:
            self._pending.append(Job(request, on_start, on_done))
            self._ready.notify()

    def cancel_pending(self) -> list[TaskRequest]:
        with self._ready:
            cancelled = [job.request for job in self._pending]
            self._pending.clear()
        return cancelled

    def stop(self, *, wait: bool) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._stopping:
                    self._ready.wait()
                if not self._pending:
                    return
                job = self._pending.popleft()
            job.on_start(job.request)
            job.on_done(run_safely(self._execute, job.request))


def _make_pool(context: PoolContext) -> ThreadPool:
    return ThreadPool(context.concurrency, context.executor)


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    return [PoolSpec(name="threads", factory=_make_pool, description="OS threads sharing one queue")]
