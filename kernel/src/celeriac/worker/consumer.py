"""The consumer: fetch messages, turn them into requests, hand them to the pool, settle them.

One thread fetches and dispatches; another settles finished requests, so an
acknowledgement never waits for a fetch to time out, and requests that finish together
are acknowledged in one transport call. Pool threads (or processes) execute and store
results. Anything that cannot become a request (a body that does not parse, a refused
content type, an unregistered task, a message redelivered too often) is dead-lettered
with the reason and, when it has a task id, recorded as FAILURE: never dropped, never a
dead worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from attrs import frozen

from celeriac import states
from celeriac.bootsteps import StepContext
from celeriac.config import Config
from celeriac.errors import CeleriacError
from celeriac.errors import ConfigError
from celeriac.errors import MessageError
from celeriac.errors import NotRegisteredError
from celeriac.message import TaskMessage
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.protocols import Delivery
from celeriac.protocols import Pool
from celeriac.protocols import SharedRateLimiter
from celeriac.protocols import Transport
from celeriac.ratelimit import RateLimits
from celeriac.request import TaskRequest
from celeriac.reserve import ReservingPool
from celeriac.worker.events import EventDispatcher
from celeriac.worker.keys import CONSUMER
from celeriac.worker.keys import EVENTS
from celeriac.worker.keys import POOL
from celeriac.worker.keys import REVOKED
from celeriac.worker.keys import TIMER
from celeriac.worker.keys import TRANSPORT

if TYPE_CHECKING:
    from celeriac.app import Celeriac
    from celeriac.worker.shutdown import ShutdownState
    from celeriac.worker.state import RevokedSet
    from celeriac.worker.timer import Timer

log = logging.getLogger("celeriac.worker")
#: An ETA further ahead than this is handed back to the transport to delay; a nearer one is
#: held in the worker until due.
ETA_TOLERANCE = 1.0
#: A rate-limited request waits in the worker up to this long; longer, it goes back to the
#: transport delayed, so a tight limit never fills the worker with messages it cannot run.
RATE_HOLD_LIMIT = 1.0


def _check_shared_limits(app: Celeriac, shared: SharedRateLimiter | None) -> None:
    """A task with a shared limit needs a store to share it in: refuse to start without one."""
    if shared is not None:
        return
    for name, task in app.tasks.items():
        if task.options.global_rate_limit:
            raise ConfigError(
                f"task {name!r} has global_rate_limit = {task.options.global_rate_limit!r}, but neither "
                f"the broker nor the result store can share a rate limit between workers (Redis and "
                f"SQLite can); remove it or use rate_limit, which is per worker"
            )


class UnprocessableMessageError(MessageError):
    """Recorded as a task's FAILURE when its message could not be processed."""


class Consumer:
    """Moves messages from the transport through the pool and acknowledges them."""

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
        self.timer = timer
        self.revoked = revoked
        self.transport = transport
        self.pool = pool
        self.events = events
        self.hostname = hostname
        worker = config.worker
        self.queues = tuple(worker.queues) or (config.default_queue,)
        self._prefetch = worker.prefetch
        #: A pool that chooses its own allowance when ``prefetch`` is not set (celeriac.reserve).
        self._reserving = pool if isinstance(pool, ReservingPool) else None
        self.max_deliveries = worker.max_deliveries
        self.poll_timeout = worker.poll_timeout
        self.processed = 0
        # token -> (its delivery, None once acknowledged; the request; acknowledge late?)
        self._inflight: dict[int, tuple[Delivery | None, TaskRequest, bool]] = {}
        self._space = threading.Condition()  # guards _inflight; notified when it shrinks
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._tokens = itertools.count(1)
        self._store = app.result_store if app.result_store_url is not None else None
        self._stopping = threading.Event()
        self._settled_all = threading.Event()
        self._settler = threading.Thread(target=self._settle_loop, name="celeriac-settler", daemon=True)
        shared: SharedRateLimiter | None = None
        for candidate in (transport, self._store):
            if shared is None and isinstance(candidate, SharedRateLimiter):
                shared = candidate
        self.rates = RateLimits(shared, RATE_HOLD_LIMIT)
        self._limited: set[str] = set()  # tasks whose limit was changed by remote control
        _check_shared_limits(app, shared)
        self._running: dict[int, float] = {}  # token -> when it started
        self._held: set[int] = set()  # tokens of rate-limited requests waiting for their slot

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
        return len(self._inflight)

    # --- the two loops ----------------------------------------------------------------

    def run(self) -> None:
        """Fetch and dispatch until :meth:`stop`; broker errors are retried with back-off."""
        stopping = self._stopping
        backoff = 0.0
        for queue_name in self.queues:
            self.transport.declare_queue(queue_name)
        self._settler.start()
        while not stopping.is_set():
            with self._space:
                while len(self._inflight) >= self.capacity and not stopping.is_set():
                    self._space.wait(self.poll_timeout)
                free = self.capacity - len(self._inflight)
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

    def _settle_loop(self) -> None:
        while not self._settled_all.is_set():
            try:
                self.settle(block=True, timeout=0.1)
            except Exception:
                # The messages of this batch were not acknowledged: they come back after the
                # visibility timeout (at-least-once). The settler must live on regardless.
                log.exception("acknowledging finished tasks failed; they will be redelivered")
                self._settled_all.wait(0.5)

    # --- one message ------------------------------------------------------------------

    def receive(self, delivery: Delivery) -> None:
        """Turn one delivery into a request for the pool, or refuse it with a reason."""
        if self._stopping.is_set():
            self.transport.reject([delivery], requeue=True)
            return
        try:
            message = self.app.codec.decode_task(delivery.envelope)
        except MessageError as exc:
            self._refuse(delivery, f"cannot decode message: {exc}", delivery.envelope.headers.get("id"))
            return
        if delivery.delivery_count > self.max_deliveries:
            self._refuse(
                delivery,
                f"delivered {delivery.delivery_count} times without being acknowledged "
                f"(worker.max_deliveries = {self.max_deliveries}); it may be killing its worker",
                message.id,
            )
            return
        task = self.app.tasks.get(message.task)
        if task is None:
            reason = (
                f"received unregistered task {message.task!r}: no such task in this worker "
                "(is its module in 'imports', or the worker started with the right -A?)"
            )
            self._refuse(delivery, reason, message.id, NotRegisteredError(reason))
            return
        if message.id in self.revoked:
            self._skip_revoked(delivery, message, "revoked", expired=False)
            return
        now = dt.datetime.now(dt.UTC)
        if message.expires is not None and message.expires <= now:
            self._skip_revoked(delivery, message, f"expired at {message.expires.isoformat()}", expired=True)
            return
        if message.eta is not None and (message.eta - now).total_seconds() > ETA_TOLERANCE:
            # Sent by a producer that did not ask the transport to delay it (a Celery client
            # on a list-based broker): hand it back delayed rather than hold it here.
            delay = (message.eta - now).total_seconds()
            priority = delivery.envelope.properties.get("priority") or 0
            self.transport.publish(delivery.queue, [delivery.envelope], priority=priority, delay=delay)
            self.transport.ack([delivery])
            return
        request = TaskRequest(
            message=message,
            queue=delivery.queue,
            delivery_count=delivery.delivery_count,
            hostname=self.hostname,
            token=next(self._tokens),
        )
        with self._space:
            self._inflight[request.token] = (delivery, request, task.options.acks_late)
        if self.events.enabled:
            self.events.task_received(message, delivery.queue)
        # An ETA at most ETA_TOLERANCE ahead (a transport's delay rounding, a producer that
        # did not ask for a delay) is waited for here: eta means "not earlier than".
        hold = (message.eta - now).total_seconds() if message.eta is not None else 0.0
        if task.options.rate_limit or task.options.global_rate_limit or task.name in self._limited:
            wait = self.rates.reserve(task.name, task.options)
            if wait > RATE_HOLD_LIMIT:
                self._hand_back(delivery, request.token, wait)
                return
            hold = max(hold, wait)
        if hold > 0:
            with self._space:
                self._held.add(request.token)
            self.timer.call_later(hold, lambda: self._release(request))
            return
        self.pool.submit(request, self.started, self._done.put)

    def _release(self, request: TaskRequest) -> None:
        with self._space:
            if request.token not in self._held:
                return  # given back by a shutdown meanwhile
            self._held.discard(request.token)
        self.pool.submit(request, self.started, self._done.put)

    def _hand_back(self, delivery: Delivery, token: int, delay: float) -> None:
        """Return a message to the transport, delayed: publish the copy first, then ack."""
        with self._space:
            self._inflight.pop(token, None)
            self._space.notify_all()
        priority = delivery.envelope.properties.get("priority") or 0
        self.transport.publish(delivery.queue, [delivery.envelope], priority=priority, delay=delay)
        self.transport.ack([delivery])

    def started(self, request: TaskRequest) -> None:
        """Called by the pool as a request starts; an early-acknowledged task is acked now.

        Acking at the start rather than on receipt means a reserved message that never
        started is still given back at shutdown, even with ``acks_late = false``.
        """
        with self._space:
            self._running[request.token] = time.time()
            entry = self._inflight.get(request.token)
            delivery = entry[0] if entry is not None and not entry[2] else None
            if delivery is not None:
                self._inflight[request.token] = (None, request, False)
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
        with self._space:
            settled = [(outcome, self._pop_delivery(outcome.request.token)) for outcome in outcomes]
            self._space.notify_all()
        acks: list[Delivery] = []
        requeues: list[Delivery] = []
        for outcome, delivery in settled:
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
        return len(outcomes)

    # --- what remote control reads and changes ------------------------------------------

    def requests(self) -> tuple[list[tuple[TaskRequest, float]], list[TaskRequest]]:
        """The requests running now (with their start time) and those reserved behind them."""
        with self._space:
            running = [
                (entry[1], self._running[token])
                for token, entry in self._inflight.items()
                if token in self._running
            ]
            reserved = [entry[1] for token, entry in self._inflight.items() if token not in self._running]
        return running, reserved

    def set_rate_limit(self, task_name: str, rate_limit: str | None) -> None:
        """Replace a task's rate limit in this worker (``None`` or ``"0"`` removes it)."""
        self.rates.set_local(task_name, rate_limit)
        self._limited.add(task_name)

    def add_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.transport.declare_queue(queue_name)
            self.queues = (*self.queues, queue_name)

    def remove_queue(self, queue_name: str) -> None:
        remaining = tuple(name for name in self.queues if name != queue_name)
        if not remaining:
            raise ValueError(f"{queue_name!r} is the last queue this worker consumes")
        self.queues = remaining

    def renew_leases(self) -> None:
        """Extend the visibility lease of every message still being worked on."""
        with self._space:
            leased = [delivery for delivery, _, _ in self._inflight.values() if delivery is not None]
        if leased:
            self.transport.extend(leased)

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching and give back what was reserved but has not started, at once.

        Called before the fetch loop has returned, so a task finishing meanwhile cannot let
        the pool start a reserved one during a warm shutdown.
        """
        self._stopping.set()
        self._requeue(self._not_started())

    def _not_started(self) -> set[int]:
        with self._space:
            held, self._held = self._held, set()
        return held | {request.token for request in self.pool.cancel_pending()}

    def drain(self, shutdown: ShutdownState) -> None:
        """After the loop ended: wait for running requests (warm) and give back the rest.

        When ``worker.shutdown_timeout`` runs out the shutdown turns cold: the pool stops
        without waiting, so a task whose message was given back cannot also finish here.
        """
        self._requeue(self._not_started())
        deadline = None if shutdown.timeout is None else time.monotonic() + shutdown.timeout
        with self._space:
            while self._inflight and not shutdown.cold:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    log.warning("warm shutdown timed out with %d tasks running", len(self._inflight))
                    shutdown.request(cold=True)
                    break
                self._space.wait(0.1 if remaining is None else min(remaining, 0.1))
        self._settled_all.set()
        if self._settler.is_alive():
            self._settler.join()
        self.settle(block=False)
        if self._inflight:
            # Cold shutdown: give the messages back now instead of after the visibility timeout.
            log.warning("requeueing %d unfinished tasks", len(self._inflight))
            self._requeue(set(self._inflight))

    # --- helpers ----------------------------------------------------------------------

    def _pop_delivery(self, token: int) -> Delivery | None:
        self._running.pop(token, None)
        entry = self._inflight.pop(token, None)
        return entry[0] if entry is not None else None

    def _requeue(self, tokens: set[int]) -> None:
        with self._space:
            deliveries = [self._pop_delivery(token) for token in tokens]
            self._space.notify_all()
        given_back = [delivery for delivery in deliveries if delivery is not None]
        if given_back:
            self.transport.reject(given_back, requeue=True)

    def _refuse(
        self, delivery: Delivery, reason: str, task_id: Any, exc: CeleriacError | None = None
    ) -> None:
        log.error("dead-lettering message %s from %r: %s", task_id or "?", delivery.queue, reason)
        if self.events.enabled and isinstance(task_id, str):
            self.events.send("task-rejected", uuid=task_id, requeue=False, reason=reason)
        if isinstance(task_id, str) and task_id and self._store is not None:
            self._store_state(task_id, states.FAILURE, exc or UnprocessableMessageError(reason))
        self.transport.dead_letter(delivery, reason)

    def _skip_revoked(self, delivery: Delivery, message: TaskMessage, reason: str, *, expired: bool) -> None:
        log.info("Task %s[%s] %s; not run", message.task, message.id, reason)
        if self._store is not None:
            self._store_state(message.id, states.REVOKED, reason, message.reply_to)
        request = TaskRequest(message=message, queue=delivery.queue, hostname=self.hostname)
        self.app.plugins.lifecycle.task_revoked(request, reason, {"expired": expired})
        if self.events.enabled:
            self.events.send("task-revoked", uuid=message.id, terminated=False, signum=None, expired=expired)
        if message.embed.chord and message.group and self._store is not None:
            from celeriac.canvas import from_dict
            from celeriac.workflow import part_done

            # A revoked header task still counts, so its chord fails instead of waiting forever.
            body = from_dict(message.embed.chord, self.app)
            part_done(self.app, message.group, message.id, body, message.group_index)
        self.transport.ack([delivery])

    def _store_state(self, task_id: str, state: str, value: Any, reply_to: str | None = None) -> None:
        assert self._store is not None
        try:
            self._store.store(self.app.results.encode(task_id, state, value, reply_to=reply_to))
        except Exception:
            log.exception("could not record %s for task %s", state, task_id)


@frozen
class ConsumerStep:
    name: ClassVar[str] = "kernel.consumer"
    requires: ClassVar[frozenset[str]] = frozenset(
        {
            "kernel.connection",
            "kernel.result_store",
            "kernel.pool",
            "kernel.timer",
            "kernel.events",
            "kernel.state",
        }
    )

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        consumer = Consumer(
            ctx.app,
            ctx.config,
            ctx.require(TRANSPORT),
            ctx.require(POOL),
            ctx.require(EVENTS),
            hostname=ctx.hostname,
            timer=ctx.require(TIMER),
            revoked=ctx.require(REVOKED),
        )
        shutdown = ctx.shutdown
        ctx.require(TIMER).call_every(max(ctx.config.visibility_timeout / 3, 0.05), consumer.renew_leases)

        def loop() -> None:
            try:
                consumer.run()
            except BaseException:
                log.critical("consumer stopped by an unexpected error; shutting down", exc_info=True)
                shutdown.request(cold=False, exit_code=1)

        thread = threading.Thread(target=loop, name="celeriac-consumer", daemon=True)
        thread.start()
        ctx.provide(CONSUMER, consumer)
        try:
            yield
        finally:
            consumer.stop()
            _join_unless_cold(thread, shutdown)
            consumer.drain(shutdown)


def _join_unless_cold(thread: threading.Thread, shutdown: ShutdownState) -> None:
    """Wait for the fetch loop, which may be running a task itself (the solo pool).

    A cold shutdown, or a warm one past ``worker.shutdown_timeout``, stops waiting: the
    thread is a daemon and its task's message is requeued by :meth:`Consumer.drain`.
    """
    deadline = None if shutdown.timeout is None else time.monotonic() + shutdown.timeout
    while thread.is_alive() and not shutdown.cold:
        if deadline is not None and time.monotonic() >= deadline:
            log.warning("warm shutdown timed out waiting for the running task")
            shutdown.request(cold=True)
            break
        thread.join(0.1)
