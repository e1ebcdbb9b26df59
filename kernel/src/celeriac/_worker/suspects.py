"""Suspects run one at a time: messages whose task was started before and never finished.

A task that kills its worker takes down the tasks running beside it too, and each of those
was started as well; were they redelivered together and run together again, every one would
reach ``worker.max_deliveries`` starts with the poison task. Run one at a time, a suspect that
is innocent finishes, and only the one that kills its worker keeps counting. A suspect
waiting here is held in the in-flight table, so a shutdown gives it back.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from celeriac._model.outcome import Outcome
from celeriac._model.request import TaskRequest
from celeriac._worker.inflight import InFlightTable

Launch = Callable[[TaskRequest, Callable[[Outcome], None]], None]


class SuspectGate:
    """At most one suspect in the pool at a time; the others wait, held, in arrival order."""

    def __init__(self, table: InFlightTable) -> None:
        self._table = table
        self._lock = threading.Lock()
        self._busy = False
        self._waiting: collections.deque[tuple[TaskRequest, Launch, Callable[[Outcome], None]]] = (
            collections.deque()
        )

    def submit(self, request: TaskRequest, launch: Launch, on_done: Callable[[Outcome], None]) -> None:
        def done(outcome: Outcome) -> None:
            try:
                on_done(outcome)
            finally:
                self._next()

        with self._lock:
            if self._busy:
                self._table.hold(request.token)
                self._waiting.append((request, launch, done))
                return
            self._busy = True
        launch(request, done)

    def _next(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._busy = False
                    return
                request, launch, done = self._waiting.popleft()
            if self._table.release(request.token):  # else given back by a shutdown
                launch(request, done)
                return
