"""The parent's handles on a queued request and on a child process."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from celeriac.plugin import Outcome
from celeriac.plugin import TaskRequest
from celeriac_prefork._zygote import Spawned

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


class Job:
    """A request with its callbacks and its (hard, soft) time limits."""

    __slots__ = ("hard", "on_done", "on_start", "request", "soft")

    def __init__(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
        limits: tuple[float | None, float | None],
    ) -> None:
        self.request = request
        self.on_start = on_start
        self.on_done = on_done
        self.hard, self.soft = limits


class Child:
    """A child process as the supervisor sees it; guarded by the pool's lock."""

    __slots__ = (
        "conn",
        "deadline",
        "done",
        "generation",
        "gone",
        "idle_since",
        "job",
        "kill_reason",
        "pid",
        "pidfd",
        "queued",
        "retiring",
        "rss",
    )

    def __init__(self, spawned: Spawned) -> None:
        self.pid = spawned.pid
        self.pidfd = spawned.pidfd
        self.conn: Connection = spawned.conn
        self.job: Job | None = None
        #: Requests written to the child behind ``job``, which it reads one by one as each
        #: one before ends (oldest first).
        self.queued: collections.deque[Job] = collections.deque()
        self.deadline: float | None = None
        self.done = 0
        self.rss = 0
        self.retiring = False
        self.gone = False
        self.kill_reason: str | None = None
        self.idle_since = time.monotonic()
        #: The pool's restart count when this child was started: an older child is replaced.
        self.generation = 0

    def kill(self, signum: int) -> None:
        """Send ``signum``; the pool's lock must be held, so the pidfd cannot be closed meanwhile."""
        if self.gone:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)


class Runtimes:
    """How long each task has been taking (a moving average), to tell short tasks apart.

    Only the supervisor thread reads and writes it.
    """

    __slots__ = ("_averages",)

    #: Weight of the newest runtime in the average.
    ALPHA = 0.2

    def __init__(self) -> None:
        self._averages: dict[str, float] = {}

    def add(self, task: str, runtime: float) -> None:
        average = self._averages.get(task)
        self._averages[task] = runtime if average is None else average + self.ALPHA * (runtime - average)

    def average(self, task: str) -> float | None:
        """How long ``task`` has been taking, in seconds; None while it has never run here."""
        return self._averages.get(task)
