"""Settling finished requests: one thread acknowledges, requeues or dead-letters what the
pool finished, in one transport call per kind for everything that finished together, so an
acknowledgement never waits for a fetch to time out.

A final record still being written (``Outcome.written``, a deferred store's) parks its
outcome: its message leaves the in-flight table as any finished one does (so the worker
fetches on), is held here, and is settled on a later pass once the write finished, or given
back if the write failed or ran out of time. Other messages are settled meanwhile. At most
:data:`PARKED_MAX` are held: beyond that the settler waits for the oldest write, leaving new
outcomes (and their places in the in-flight table) where they are, so a stuck connection
stops the worker taking more work. At the stop, writes still under way get
:data:`STOP_GRACE` seconds, then their messages are given back."""

from __future__ import annotations

import logging
import queue
import threading
import time

from attrs import frozen

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
#: Outcomes held here at most while their records are written.
PARKED_MAX = 256
#: Seconds the stop gives writes still under way before their messages are given back.
STOP_GRACE = 1.0


@frozen
class _Finished:
    """An outcome and its message (None: acknowledged when it started), out of the table."""

    outcome: Outcome
    delivery: Delivery | None


class Settler:
    """Takes outcomes from the pool (:meth:`done`, any thread) and settles their messages."""

    def __init__(self, transport: Transport, table: InFlightTable, events: EventDispatcher) -> None:
        self.transport = transport
        self.table = table
        self.events = events
        self.processed = 0
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._parked: list[_Finished] = []  # their records still being written, oldest first
        self._settling = threading.Lock()  # one pass at a time (the thread, then stop())
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="celeriac-settler", daemon=True)

    def done(self, outcome: Outcome) -> None:
        """The pool's ``on_done``: queue an outcome for the settler thread."""
        self._done.put(outcome)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then settle what is left here; give back the messages of writes
        still under way after :data:`STOP_GRACE`."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self.settle(block=False)
        deadline = time.monotonic() + STOP_GRACE
        while self._parked and (remaining := deadline - time.monotonic()) > 0:
            _finished(self._parked[0].outcome, min(PARKED_RECHECK * 10, remaining))
            self.settle(block=False)
        with self._settling:
            held, self._parked = self._parked, []
        given_back = [one.delivery for one in held if one.delivery is not None]
        if given_back:
            log.warning(
                "giving back %d finished task(s) whose results were still being written", len(given_back)
            )
            self.transport.reject(given_back, requeue=True)

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
        acks: list[Delivery] = []
        requeues: list[Delivery] = []
        for finished in ready:
            outcome, delivery = finished.outcome, finished.delivery
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

    def _ready(self, block: bool, timeout: float | None) -> list[_Finished]:
        """The parked outcomes and those queued since whose writes are over (or that have
        none), out of the in-flight table; the others are parked (again)."""
        fresh: list[Outcome] = []
        room = PARKED_MAX - len(self._parked)  # the rest wait in the table, holding the worker back
        if room > 0:
            try:
                # With outcomes parked, the wait below is on their writes instead of the queue.
                fresh.append(self._done.get(block and not self._parked, timeout))
                while len(fresh) < room:
                    fresh.append(self._done.get_nowait())
            except queue.Empty:
                pass
        deliveries = self.table.pop([outcome.request.token for outcome in fresh]) if fresh else []
        candidates = self._parked + [_Finished(o, d) for o, d in zip(fresh, deliveries, strict=True)]
        self._parked = []
        if block and candidates and not _finished(candidates[0].outcome):
            # The oldest write is under way: give it a moment (writes finish in order on
            # their connection), so that it and those behind it are settled in this batch
            # rather than one by one. A stuck write holds the others up this long only.
            _finished(candidates[0].outcome, PARKED_RECHECK)
        ready: list[_Finished] = []
        for candidate in candidates:
            (ready if _finished(candidate.outcome) else self._parked).append(candidate)
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
