"""A thread that runs periodic callbacks (lease renewal, heartbeats)."""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config
from celeriac._worker.keys import TIMER

log = logging.getLogger("celeriac.worker.timer")


class Timer:
    """Calls functions every N seconds on one background thread; errors are logged, not fatal."""

    def __init__(self) -> None:
        self._entries: list[tuple[float, int, float | None, Callable[[], None]]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="celeriac-timer", daemon=True)
        self._count = 0

    def call_every(self, interval: float, fn: Callable[[], None]) -> None:
        with self._wake:
            self._count += 1
            heapq.heappush(self._entries, (time.monotonic() + interval, self._count, interval, fn))
            self._wake.notify()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` once, ``delay`` seconds from now."""
        with self._wake:
            self._count += 1
            heapq.heappush(self._entries, (time.monotonic() + delay, self._count, None, fn))
            self._wake.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._entries or self._entries[0][0] > time.monotonic()):
                    timeout = self._entries[0][0] - time.monotonic() if self._entries else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, count, interval, fn = heapq.heappop(self._entries)
                if interval is not None:
                    heapq.heappush(self._entries, (time.monotonic() + interval, count, interval, fn))
            try:
                fn()
            except Exception:
                log.exception("periodic callback %r failed", fn)


@frozen
class TimerStep:
    name: ClassVar[str] = "kernel.timer"
    requires: ClassVar[frozenset[str]] = frozenset()

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        timer = Timer()
        timer.start()
        ctx.provide(TIMER, timer)
        try:
            yield
        finally:
            timer.stop()
