"""Settling finished requests: one thread acknowledges, requeues or dead-letters what the
pool finished, in one transport call per kind for everything that finished together, so an
acknowledgement never waits for a fetch to time out.

A final record still being written (``Outcome.written``, a deferred store's) is waited for
first: the message is let go of only once its result is written, and given back if the
write failed."""

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


class Settler:
    """Takes outcomes from the pool (:meth:`done`, any thread) and settles their messages."""

    def __init__(self, transport: Transport, table: InFlightTable, events: EventDispatcher) -> None:
        self.transport = transport
        self.table = table
        self.events = events
        self.processed = 0
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
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
        """Acknowledge finished requests in one batch; returns how many were settled."""
        outcomes: list[Outcome] = []
        try:
            outcomes.append(self._done.get(block, timeout))
            while True:
                outcomes.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if not outcomes:
            return 0
        deliveries = self.table.pop([outcome.request.token for outcome in outcomes])
        acks: list[Delivery] = []
        requeues: list[Delivery] = []
        for outcome, delivery in zip(outcomes, deliveries, strict=True):
            self.processed += 1
            if self.events.enabled:
                self.events.task_finished(outcome)
            if delivery is None:
                continue
            if outcome.written is not None and not _written(outcome):
                requeues.append(delivery)  # its result may be unwritten: it runs again
            elif outcome.disposition is Disposition.ACK:
                acks.append(delivery)
            elif outcome.disposition is Disposition.REQUEUE:
                requeues.append(delivery)
            else:
                self.transport.dead_letter(delivery, outcome.reason or outcome.state)
        if acks:
            self.transport.ack(acks)
        if requeues:
            self.transport.reject(requeues, requeue=True)
        return len(outcomes)


def _written(outcome: Outcome) -> bool:
    """Wait for the outcome's final record to be written; False, logged, if it was not."""
    assert outcome.written is not None
    try:
        outcome.written.wait()
    except Exception as exc:
        log.error(
            "the %s record of task %s could not be written (%r); its message goes back to run again",
            outcome.state,
            outcome.request.id,
            exc,
        )
        return False
    return True
