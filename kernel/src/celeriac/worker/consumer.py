"""The consumer: fetch messages, turn them into requests, hand them to the pool, settle them.

One thread fetches and settles; pool threads (or processes) execute and store results and
report outcomes through a queue, so acknowledgements are batched into one transport call.
Anything that cannot become a request (a body that does not parse, a refused content type,
an unregistered task, a message redelivered too often) is dead-lettered with the reason
and, when it has a task id, recorded as FAILURE: never dropped, never a dead worker.
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
from celeriac.errors import MessageError
from celeriac.errors import NotRegisteredError
from celeriac.message import TaskMessage
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.protocols import Delivery
from celeriac.protocols import Pool
from celeriac.protocols import Transport
from celeriac.request import TaskRequest
from celeriac.worker.events import EventDispatcher
from celeriac.worker.keys import CONSUMER
from celeriac.worker.keys import EVENTS
from celeriac.worker.keys import POOL
from celeriac.worker.keys import TIMER
from celeriac.worker.keys import TRANSPORT

if TYPE_CHECKING:
    from celeriac.app import Celeriac
    from celeriac.worker.worker import ShutdownState

log = logging.getLogger("celeriac.worker")
#: An ETA further ahead than this is handed back to the transport to delay, not held.
ETA_TOLERANCE = 1.0


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
    ) -> None:
        self.app = app
        self.transport = transport
        self.pool = pool
        self.events = events
        self.hostname = hostname
        worker = config.worker
        self.queues = tuple(worker.queues) or (config.default_queue,)
        self.capacity = pool.limit + (worker.prefetch or pool.limit)
        self.max_deliveries = worker.max_deliveries
        self.poll_timeout = worker.poll_timeout
        self.processed = 0
        self._inflight: dict[int, tuple[Delivery | None, TaskRequest]] = {}
        self._lock = threading.Lock()
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._tokens = itertools.count(1)
        self._store = app.result_store if app.result_store_url is not None else None
        self._stopping = threading.Event()

    @property
    def active_count(self) -> int:
        return len(self._inflight)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Fetch and dispatch until :meth:`stop` is called; broker errors are retried with back-off."""
        stopping = self._stopping
        backoff = 0.0
        for queue_name in self.queues:
            self.transport.declare_queue(queue_name)
        while not stopping.is_set():
            self.settle(block=False)
            free = self.capacity - len(self._inflight)
            if free <= 0:
                self.settle(block=True, timeout=self.poll_timeout)
                continue
            try:
                deliveries = self.transport.fetch(self.queues, free, self.poll_timeout)
                backoff = 0.0
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.error("fetching from the broker failed (%s); retrying in %.1f s", exc, backoff)
                stopping.wait(backoff)
                continue
            for delivery in deliveries:
                self.receive(delivery)

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
        now = dt.datetime.now(dt.UTC)
        if message.expires is not None and message.expires <= now:
            self._revoke_expired(delivery, message)
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
        acks_late = task.options.acks_late
        with self._lock:
            self._inflight[request.token] = (delivery if acks_late else None, request)
        if not acks_late:
            self.transport.ack([delivery])
        if self.events.enabled:
            self.events.send(
                "task-received",
                uuid=message.id,
                name=message.task,
                args=message.argsrepr,
                kwargs=message.kwargsrepr,
                retries=message.retries,
                root_id=message.root_id,
                parent_id=message.parent_id,
            )
        self.pool.submit(request, self._done.put)

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
        acks: list[Delivery] = []
        requeues: list[Delivery] = []
        with self._lock:
            entries = [
                (outcome, self._inflight.pop(outcome.request.token, (None, None))[0]) for outcome in outcomes
            ]
        for outcome, delivery in entries:
            self.processed += 1
            if self.events.enabled:
                self._send_outcome_event(outcome)
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

    def renew_leases(self) -> None:
        """Extend the visibility lease of every message still being worked on."""
        with self._lock:
            leased = [delivery for delivery, _ in self._inflight.values() if delivery is not None]
        if leased:
            self.transport.extend(leased)

    def stop(self) -> None:
        """Stop fetching and give back what was reserved but has not started, at once.

        Called before the fetch loop has returned, so a task finishing meanwhile cannot let
        the pool start a reserved one during a warm shutdown.
        """
        self._stopping.set()
        self._requeue({request.token for request in self.pool.cancel_pending()})

    def drain(self, shutdown: ShutdownState) -> None:
        """After the loop ended: requeue what has not started; wait for running requests unless cold."""
        self._requeue({request.token for request in self.pool.cancel_pending()})
        deadline = None if shutdown.timeout is None else time.monotonic() + shutdown.timeout
        while self._inflight and not shutdown.cold:
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("warm shutdown timed out with %d tasks running", len(self._inflight))
                break
            self.settle(block=True, timeout=0.1)
        self.settle(block=False)
        if self._inflight:
            # Cold shutdown: give the messages back now instead of after the visibility timeout.
            log.warning("requeueing %d unfinished tasks", len(self._inflight))
            self._requeue(set(self._inflight))

    # --- helpers ----------------------------------------------------------------------

    def _requeue(self, tokens: set[int]) -> None:
        with self._lock:
            entries = [self._inflight.pop(token) for token in tokens if token in self._inflight]
        deliveries = [delivery for delivery, _ in entries if delivery is not None]
        if deliveries:
            self.transport.reject(deliveries, requeue=True)

    def _refuse(
        self, delivery: Delivery, reason: str, task_id: Any, exc: CeleriacError | None = None
    ) -> None:
        log.error("dead-lettering message %s from %r: %s", task_id or "?", delivery.queue, reason)
        if isinstance(task_id, str) and task_id and self._store is not None:
            self._store_state(task_id, states.FAILURE, exc or UnprocessableMessageError(reason))
        self.transport.dead_letter(delivery, reason)

    def _revoke_expired(self, delivery: Delivery, message: TaskMessage) -> None:
        assert message.expires is not None
        reason = f"expired at {message.expires.isoformat()}"
        log.info("Task %s[%s] %s; not run", message.task, message.id, reason)
        if self._store is not None:
            self._store_state(message.id, states.REVOKED, reason)
        if self.app.plugins.lifecycle.task_revoked:
            self.app.plugins.hook.celeriac_task_revoked(
                request=TaskRequest(message=message, queue=delivery.queue, hostname=self.hostname),
                reason=reason,
                extra={"expired": True},
            )
        if self.events.enabled:
            self.events.send("task-revoked", uuid=message.id, terminated=False, signum=None, expired=True)
        self.transport.ack([delivery])

    def _store_state(self, task_id: str, state: str, value: Any) -> None:
        assert self._store is not None
        try:
            self._store.store(self.app.results.encode(task_id, state, value))
        except Exception:
            log.exception("could not record %s for task %s", state, task_id)

    def _send_outcome_event(self, outcome: Outcome) -> None:
        uuid = outcome.request.id
        if outcome.state == states.SUCCESS:
            self.events.send("task-succeeded", uuid=uuid, runtime=outcome.runtime)
        elif outcome.state == states.RETRY:
            self.events.send("task-retried", uuid=uuid, exception=outcome.reason)
        else:
            self.events.send("task-failed", uuid=uuid, exception=outcome.reason)


class UnprocessableMessageError(MessageError):
    """Recorded as a task's FAILURE when its message could not be processed."""


@frozen
class ConsumerStep:
    name: ClassVar[str] = "kernel.consumer"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"kernel.connection", "kernel.result_store", "kernel.pool", "kernel.timer", "kernel.events"}
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
            hostname=ctx.extras["hostname"],
        )
        shutdown: ShutdownState = ctx.extras["shutdown"]
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
            thread.join()
            consumer.drain(shutdown)
