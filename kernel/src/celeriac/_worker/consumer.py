"""The consumer: fetch messages, turn them into requests, hand them to the pool.

One thread fetches and dispatches. What it holds is in the in-flight table
(:mod:`.inflight`); the settler acknowledges what finished (:mod:`.settle`); anything that
cannot become a request (a body that does not parse, a refused content type, an
unregistered task, a message redelivered too often) or is revoked goes to
:mod:`.refusal`; rate limits are :mod:`.ratelimits`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from celeriac._contract.protocols import Pool
from celeriac._contract.protocols import Transport
from celeriac._contract.reserve import ReservingPool
from celeriac._model.config import Config
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.records import Delivery
from celeriac._model.request import TaskRequest
from celeriac._worker.activity import Activity
from celeriac._worker.activity import FetchRounds
from celeriac._worker.drain import drain
from celeriac._worker.drain import give_back
from celeriac._worker.drain import not_started
from celeriac._worker.events import EventDispatcher
from celeriac._worker.inflight import InFlight
from celeriac._worker.inflight import InFlightTable
from celeriac._worker.ratelimits import RateLimits
from celeriac._worker.refusal import Refusals
from celeriac._worker.settle import Settler
from celeriac._worker.suspects import SuspectGate

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._contract.shutdown import ShutdownState
    from celeriac._worker.state import RevokedSet
    from celeriac._worker.timer import Timer

log = logging.getLogger("celeriac.worker")
#: An ETA further ahead than this is handed back to the transport to delay; a nearer one is
#: held in the worker until due.
ETA_TOLERANCE = 1.0
#: A rate-limited request waits in the worker up to this long; longer, it goes back to the
#: transport delayed, so a tight limit never fills the worker with messages it cannot run.
RATE_HOLD_LIMIT = 1.0


class Consumer:
    """Moves messages from the transport through the pool."""

    def __init__(
        self,
        app: Celeriac,
        config: Config,
        transport: Transport,
        pool: Pool,
        events: EventDispatcher,
        *,
        hostname: str,
        timer: Timer,
        revoked: RevokedSet,
    ) -> None:
        self.app = app
        self.lifecycle = app.plugins.lifecycle
        self.timer = timer
        self.revoked = revoked
        self.transport = transport
        self.pool = pool
        self.events = events
        self.hostname = hostname
        worker = config.worker
        self.queues = tuple(worker.queues) or (config.default_queue,)
        #: Queues dropped by ``cancel_consumer``: a fetch under way when one was dropped may
        #: still bring its messages, which are given back rather than run.
        self._dropped: frozenset[str] = frozenset()
        self._prefetch = worker.prefetch
        #: A pool that chooses its own allowance when ``prefetch`` is not set (ReservingPool).
        self._reserving = pool if isinstance(pool, ReservingPool) else None
        self.max_deliveries = worker.max_deliveries
        self.poll_timeout = worker.poll_timeout
        self.table = InFlightTable()
        self.rounds = FetchRounds()
        self.settler = Settler(transport, self.table, events)
        self.refusals = Refusals(app, transport, events, hostname=hostname)
        self.gate = SuspectGate(self.table)
        self._suspects: set[int] = set()
        # Redelivered late-acknowledged requests whose start is written in the ledger (.starts).
        self._counted: set[int] = set()
        self._tokens = itertools.count(1)
        self._stopping = threading.Event()
        store = app.result_store if app.result_store_url is not None else None
        self.rates = RateLimits.for_worker(app, (transport, store), RATE_HOLD_LIMIT)

    @property
    def capacity(self) -> int:
        """How many messages this worker holds: what the pool runs plus the prefetch allowance.

        Read each time, so a pool that grows (remote control, autoscale) reserves more.
        """
        limit = self.pool.limit
        if self._prefetch:
            return limit + self._prefetch
        return limit + (self._reserving.reserve if self._reserving is not None else limit)

    @property
    def active_count(self) -> int:
        return len(self.table)

    @property
    def processed(self) -> int:
        """Requests settled since the worker started."""
        return self.settler.processed

    def activity(self) -> Activity:
        """What this consumer holds and has taken so far (a test's ``join()`` reads it)."""
        return self.rounds.activity(held=len(self.table))

    def wait_round(self, after: int, timeout: float) -> bool:
        """Wait until a fetch round ends after round ``after``; False if ``timeout`` passed."""
        return self.rounds.wait(after, timeout)

    def run(self) -> None:
        """Fetch and dispatch until :meth:`stop`; broker errors are retried with back-off."""
        stopping = self._stopping
        backoff = 0.0
        for queue_name in self.queues:
            self.transport.declare_queue(queue_name)
        self.settler.start()
        while not stopping.is_set():
            free = self.table.wait_for_room(lambda: self.capacity, self.poll_timeout, stopping)
            if stopping.is_set():
                break
            try:
                deliveries = self.transport.fetch(self.queues, free, self.poll_timeout)
                backoff = 0.0
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.error("fetching from the broker failed (%s); retrying in %.1f s", exc, backoff)
                stopping.wait(backoff)
                continue
            for delivery in deliveries:
                try:
                    self.receive(delivery)
                except Exception:
                    # A broker error mid-way (the ETA hand-back, an early ack): the message
                    # goes back, or comes back after its lease; the consumer carries on.
                    log.exception("could not dispatch a message from %r; giving it back", delivery.queue)
                    with contextlib.suppress(Exception):
                        self.transport.reject([delivery], requeue=True)
            self.rounds.ended(len(deliveries))

    def receive(self, delivery: Delivery) -> None:
        """Turn one delivery into a request for the pool, or refuse it with a reason."""
        if self._stopping.is_set() or (self._dropped and delivery.queue in self._dropped):
            self.transport.reject([delivery], requeue=True)
            return
        screened = self.refusals.screen(delivery, self.max_deliveries, self.revoked)
        if screened is None:
            return
        message, task, now, suspect = screened
        if message.eta is not None and (message.eta - now).total_seconds() > ETA_TOLERANCE:
            # Sent by a producer that did not ask the transport to delay it (a Celery client
            # on a list-based broker): hand it back delayed rather than hold it here.
            self._hand_back(delivery, (message.eta - now).total_seconds())
            return
        request = TaskRequest(
            message=message,
            queue=delivery.queue,
            delivery_count=delivery.delivery_count,
            hostname=self.hostname,
            token=next(self._tokens),
        )
        self.table.add(InFlight(request=request, delivery=delivery, acks_late=task.options.acks_late))
        if suspect:
            self._suspects.add(request.token)
        if delivery.redelivered and self.refusals.starts.counted and task.options.acks_late:
            self._counted.add(request.token)
        if self.events.enabled:
            self.events.task_received(message, delivery.queue)
        self.lifecycle.task_received(request)
        # An ETA at most ETA_TOLERANCE ahead (a transport's delay rounding, a producer that
        # did not ask for a delay) is waited for here: eta means "not earlier than".
        hold = (message.eta - now).total_seconds() if message.eta is not None else 0.0
        if self.rates.applies(task.name, task.options):
            wait = self.rates.reserve(task.name, task.options)
            if wait > RATE_HOLD_LIMIT:
                self.table.pop([request.token])
                self._suspects.discard(request.token)  # handed back: it never runs here
                self._counted.discard(request.token)
                self._hand_back(delivery, wait)
                return
            hold = max(hold, wait)
        if hold > 0:
            self.table.hold(request.token)
            self.timer.call_later(hold, lambda: self._release(request))
            return
        self._submit(request)

    def _release(self, request: TaskRequest) -> None:
        if self.table.release(request.token):  # else given back by a shutdown meanwhile
            self._submit(request)

    def _submit(self, request: TaskRequest) -> None:
        """To the pool; a suspect (started before, never finished) through the gate. Only a
        request whose start is counted is settled through ``_forget_then_settle``: every other
        one goes straight to the settler, with nothing added per task."""
        done = self._forget_then_settle if request.token in self._counted else self.settler.done
        if request.token in self._suspects:
            self._suspects.discard(request.token)
            self.gate.submit(request, self._launch, done)
        else:
            self.pool.submit(request, self.started, done)

    def _launch(self, request: TaskRequest, on_done: Callable[[Outcome], None]) -> None:
        self.pool.submit(request, self.started, on_done)

    def _forget_then_settle(self, outcome: Outcome) -> None:
        """A counted request is done: a task that finished has its recorded starts forgotten
        before it is settled, so a message the worker dies before acknowledging does not come
        back counted as a poison's (one that never started forgets nothing it had)."""
        if outcome.disposition is Disposition.ACK:
            self.refusals.starts.forget(outcome.request.message)
        self.settler.done(outcome)

    def _hand_back(self, delivery: Delivery, delay: float) -> None:
        """Return a message to the transport, delayed: publish the copy first, then ack."""
        priority = delivery.envelope.properties.get("priority") or 0
        self.transport.publish(delivery.queue, [delivery.envelope], priority=priority, delay=delay)
        self.transport.ack([delivery])

    def started(self, request: TaskRequest) -> None:
        """Called by the pool as a request starts; an early-acknowledged task is acked now.

        Acking at the start rather than on receipt means a reserved message that never
        started is still given back at shutdown, even with ``acks_late = false``.
        """
        if request.token in self._counted:
            # Counted before the task runs, where it outlives this worker (see .starts).
            self._counted.discard(request.token)
            self.refusals.starts.record(request.message)
        delivery = self.table.start(request.token)
        if delivery is not None:
            try:
                self.transport.ack([delivery])
            except Exception:
                # Runs in a pool thread, which must not die: the task still runs, and its
                # message may be delivered again (at-least-once rather than at-most-once).
                log.exception("early acknowledgement of %s[%s] failed", request.task, request.id)
        if self.events.enabled:
            self.events.send("task-started", uuid=request.id)

    def settle(self, *, block: bool, timeout: float | None = None) -> int:
        """Acknowledge finished requests in one batch (see :class:`Settler`)."""
        return self.settler.settle(block=block, timeout=timeout)

    # --- what remote control reads and changes ------------------------------------------

    def requests(self) -> tuple[list[tuple[TaskRequest, float]], list[TaskRequest]]:
        """The requests running now (with their start time) and those reserved behind them."""
        return self.table.requests()

    def set_rate_limit(self, task_name: str, rate_limit: str | None) -> None:
        """Replace a task's rate limit in this worker (``None`` or ``"0"`` removes it)."""
        self.rates.change(task_name, rate_limit)

    def add_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.transport.declare_queue(queue_name)
            self.queues = (*self.queues, queue_name)
        self._dropped = self._dropped - {queue_name}

    def remove_queue(self, queue_name: str) -> None:
        remaining = tuple(name for name in self.queues if name != queue_name)
        if not remaining:
            raise ValueError(f"{queue_name!r} is the last queue this worker consumes")
        self.queues = remaining
        self._dropped = self._dropped | {queue_name}

    def renew_leases(self) -> None:
        """Extend the visibility lease of every message still being worked on."""
        leased = self.table.leased()
        if leased:
            self.transport.extend(leased)

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching and give back what was reserved but has not started, at once.

        Called before the fetch loop has returned, so a task finishing meanwhile cannot let
        the pool start a reserved one during a warm shutdown.
        """
        self._stopping.set()
        give_back(self.table, self.transport, not_started(self.table, self.pool))

    def drain(self, shutdown: ShutdownState) -> None:
        """After the loop ended: wait for running requests (warm) and give back the rest
        (see :func:`.drain.drain`)."""
        drain(self.table, self.settler, self.pool, self.transport, shutdown)
