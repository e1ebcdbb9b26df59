"""Settling finished requests: one thread acknowledges, requeues or dead-letters what the
pool finished, in one transport call per kind for everything that finished together, so an
acknowledgement never waits for a fetch to time out.

A final record still being written (``Outcome.written``, a deferred store's) parks its
outcome: the message stays in the in-flight table (its lease renewed, its place counted
against the prefetch) and is settled on a later pass once the write finished, or given back
if it failed or ran out of time. Other messages are settled meanwhile, and a cold stop does
not wait for a write: a parked message left over is given back with the unfinished ones."""

from __future__ import annotations

import logging
import queue
import threading

from celeriac._contract.protocols import Transport
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.records import Delivery
from celeriac._worker.events import EventDispatcher
from celeriac._worker.inflight import InFlightTable

log = logging.getLogger("celeriac.worker")

#: How long the settler waits for the oldest outcome's write, when it is under way, before it
#: settles what is ready and parks the rest (seconds); it goes on as soon as the write is over.
PARKED_RECHECK = 0.002


class Settler:
    """Takes outcomes from the pool (:meth:`done`, any thread) and settles their messages."""

    def __init__(self, transport: Transport, table: InFlightTable, events: EventDispatcher) -> None:
        self.transport = transport
        self.table = table
        self.events = events
        self.processed = 0
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._parked: list[Outcome] = []  # finished, their records still being written
        self._settling = threading.Lock()  # one pass at a time (the thread, then stop())
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="celeriac-settler", daemon=True)

    def done(self, outcome: Outcome) -> None:
        """The pool's ``on_done``: queue an outcome for the settler thread."""
        self._done.put(outcome)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then settle what is left here."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self.settle(block=False)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.settle(block=True, timeout=0.1)
            except Exception:
                # The messages of this batch were not acknowledged: they come back after the
                # visibility timeout (at-least-once). The settler must live on regardless.
                log.exception("acknowledging finished tasks failed; they will be redelivered")
                self._stopped.wait(0.5)

    def settle(self, *, block: bool, timeout: float | None = None) -> int:
        """Acknowledge finished requests in one batch; returns how many were settled.
        Outcomes whose records are still being written are parked until a later pass."""
        with self._settling:
            return self._settle(block, timeout)

    def _settle(self, block: bool, timeout: float | None) -> int:
        ready = self._ready(block, timeout)
        if not ready:
            return 0
        deliveries = self.table.pop([outcome.request.token for outcome in ready])
        acks: list[Delivery] = []
        requeues: list[Delivery] = []
        for outcome, delivery in zip(ready, deliveries, strict=True):
            unwritten = outcome.written is not None and not _written(outcome, delivery is not None)
            if unwritten and delivery is not None:
                requeues.append(delivery)  # its result may be unwritten: it runs again
                continue
            self.processed += 1
            if self.events.enabled:
                self.events.task_finished(outcome)
            if delivery is None:
                continue
            if outcome.disposition is Disposition.ACK:
                acks.append(delivery)
            elif outcome.disposition is Disposition.REQUEUE:
                requeues.append(delivery)
            else:
                self.transport.dead_letter(delivery, outcome.reason or outcome.state)
        if acks:
            self.transport.ack(acks)
        if requeues:
            self.transport.reject(requeues, requeue=True)
        return len(ready)

    def _ready(self, block: bool, timeout: float | None) -> list[Outcome]:
        """The parked outcomes and those queued since, less the ones parked (again) because
        their record is still being written."""
        outcomes, self._parked = self._parked, []
        parked = bool(outcomes)
        try:
            # With outcomes parked, the wait below is on their writes instead of the queue.
            outcomes.append(self._done.get(block and not parked, timeout))
            while True:
                outcomes.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if block and outcomes and not _finished(outcomes[0]):
            # The oldest write is under way: give it a moment (writes finish in order on
            # their connection), so that it and those behind it are settled in this batch
            # rather than one by one. A stuck write holds the others up this long only.
            _finished(outcomes[0], PARKED_RECHECK)
        ready: list[Outcome] = []
        for outcome in outcomes:
            (ready if _finished(outcome) else self._parked).append(outcome)
        return ready


def _finished(outcome: Outcome, timeout: float = 0.0) -> bool:
    """Has the outcome's record write finished (or is there none)? A store whose check
    fails counts as finished: its ``wait()`` then says what became of the write."""
    written = outcome.written
    if written is None:
        return True
    try:
        return written.finished(timeout)
    except Exception:
        return True


def _written(outcome: Outcome, held: bool) -> bool:
    """Was the outcome's final record written (its write has finished)? False, logged, if
    not; ``held``: the message is still unacknowledged, so it goes back to run again."""
    assert outcome.written is not None
    try:
        outcome.written.wait()
    except Exception as exc:
        fate = (
            "its message goes back to run again"
            if held
            else "its message was acknowledged when it started, or already given back"
        )
        log.error(
            "the %s record of task %s could not be written (%r); %s",
            outcome.state,
            outcome.request.id,
            exc,
            fate,
        )
        return False
    return True
