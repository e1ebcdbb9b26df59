"""A bounded buffer of events drained in batches by one daemon thread.

``put`` runs on the worker's hot path, from several threads at once: it takes one lock,
appends to a deque and returns. It never blocks on I/O and never waits for the consumer of
the batches: when the buffer is full the oldest event is dropped, and the drop is counted
and logged by the flushing thread. The thread starts with the first event, so a sink that
is built but never sent to (events off) costs nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import final

log = logging.getLogger("celeriac.events")

Event = Mapping[str, Any]
#: A flush also happens as soon as this many events wait, without waiting for the interval.
BATCH_SIZE = 100
#: Seconds ``close`` waits for an in-progress flush before giving up on the rest.
CLOSE_TIMEOUT = 5.0


@final
class EventBuffer:
    """Collects events and hands them, in order and in batches, to ``flush`` on its own thread.

    :param flush: called with a non-empty list of events, never from two threads at once;
        an exception is logged and that batch is lost.
    :param interval: seconds between two flushes.
    :param max_buffer: events held at most; more drop the oldest.
    :param batch_size: flush early once this many events wait.
    :param autostart: start the thread on the first event; when false, :meth:`start` does.
    """

    def __init__(
        self,
        flush: Callable[[list[Event]], None],
        *,
        interval: float,
        max_buffer: int,
        batch_size: int = BATCH_SIZE,
        name: str = "celeriac-events",
        autostart: bool = True,
    ) -> None:
        self.interval = interval
        self.max_buffer = max_buffer
        self.autostart = autostart
        self._flush = flush
        self._name = name
        self._events: deque[Event] = deque(maxlen=max_buffer)
        self._threshold = min(batch_size, max_buffer)
        self._dropped = 0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, event: Event) -> None:
        """Buffer one event; cheap and thread-safe, never blocks on I/O."""
        with self._lock:
            if self._closed:
                return
            events = self._events
            if len(events) == self.max_buffer:
                self._dropped += 1  # the deque's maxlen drops the oldest on append
            events.append(event)
            waiting = len(events)
        if waiting == self._threshold:
            self._wake.set()
        if self._thread is None and self.autostart:
            self.start()

    def start(self) -> None:
        """Start the flushing thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Hand everything buffered to ``flush`` now; returns how many events went."""
        with self._flushing:
            with self._lock:
                batch = list(self._events)
                self._events.clear()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning(
                    "event buffer full (max_buffer = %d): dropped the %d oldest events",
                    self.max_buffer,
                    dropped,
                )
            if not batch:
                return 0
            try:
                self._flush(batch)
            except Exception:
                # Monitoring data only: the batch is lost, the worker is not disturbed.
                log.exception("could not deliver %d events; they are lost", len(batch))
            return len(batch)

    def pending(self) -> int:
        """Events waiting for the next flush."""
        with self._lock:
            return len(self._events)

    def close(self, *, discard: bool = False) -> None:
        """Stop accepting events, flush what is left (unless ``discard``) and stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
            if thread.is_alive():
                log.warning("event flush still running after %.0f s; not waiting for it", CLOSE_TIMEOUT)
                return
        if discard:
            with self._lock:
                self._events.clear()
            return
        self.flush()
