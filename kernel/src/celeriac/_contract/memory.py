"""The ``memory://`` transport and result store: a broker and a store inside one process.

``memory://`` is a real transport with the same contract as the others (leases,
redelivery, delay, priorities, dead letters, fan-out), so tests exercise the worker
without a server. It is a kernel plugin, always registered: any app can say
``broker = "memory://"``. Each app builds its own broker, so produce and consume with
the same app (a worker running in a thread of the test, see :mod:`celeriac.testing`).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from queue import Empty
from queue import SimpleQueue

from celeriac._contract.hookspecs import hookimpl
from celeriac._contract.specs import ResultStoreSpec
from celeriac._contract.specs import TransportSpec
from celeriac._model.records import DeadLetter
from celeriac._model.records import Delivery
from celeriac._model.records import Envelope
from celeriac._model.records import ResultRecord
from celeriac._model.states import SUCCESS

__all__ = ["MemoryResultStore", "MemorySubscription", "MemoryTransport"]


class MemoryTransport:
    """One process's broker: per-queue heaps ordered by (visible time, -priority, sequence)."""

    def __init__(self, visibility_timeout: float = 300.0) -> None:
        self.visibility_timeout = visibility_timeout
        self._queues: dict[str, list[tuple[float, int, int, Envelope, int]]] = {}
        self._leased: dict[int, tuple[str, Envelope, int, int, float]] = {}
        self._dead: dict[str, DeadLetter] = {}
        self._subscribers: dict[str, list[MemorySubscription]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def declare_queue(self, queue: str) -> None:
        with self._cond:
            self._queues.setdefault(queue, [])

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        with self._cond:
            for envelope in envelopes:
                self._push(queue, envelope, priority, time.monotonic() + delay, 0)
            self._cond.notify_all()

    def _push(self, queue: str, envelope: Envelope, priority: int, visible: float, count: int) -> None:
        heapq.heappush(
            self._queues.setdefault(queue, []), (visible, -priority, next(self._seq), envelope, count)
        )

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._expire_leases()
                found = self._take(queues, limit)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(min(remaining, 0.05))

    def _take(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        now = time.monotonic()
        ready = []
        for name in queues:
            for visible, neg_priority, seq, envelope, count in self._queues.get(name, []):
                if visible <= now:
                    ready.append((neg_priority, seq, name, envelope, count, visible))
        ready.sort(key=lambda item: (item[0], item[1]))
        taken = []
        for neg_priority, seq, name, envelope, count, visible in ready[:limit]:
            self._queues[name].remove((visible, neg_priority, seq, envelope, count))
            heapq.heapify(self._queues[name])
            self._leased[seq] = (name, envelope, -neg_priority, count + 1, now + self.visibility_timeout)
            taken.append(Delivery(envelope=envelope, queue=name, tag=seq, delivery_count=count + 1))
        return taken

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for tag, (queue, envelope, priority, count, until) in list(self._leased.items()):
            if until <= now:
                del self._leased[tag]
                self._push(queue, envelope, priority, now, count)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            for delivery in deliveries:
                self._leased.pop(delivery.tag, None)

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        with self._cond:
            for delivery in deliveries:
                leased = self._leased.pop(delivery.tag, None)
                if leased is not None and requeue:
                    queue, envelope, priority, count, _ = leased
                    self._push(queue, envelope, priority, time.monotonic(), count)
            self._cond.notify_all()

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            for delivery in deliveries:
                if delivery.tag in self._leased:
                    queue, envelope, priority, count, _ = self._leased[delivery.tag]
                    self._leased[delivery.tag] = (
                        queue,
                        envelope,
                        priority,
                        count,
                        time.monotonic() + self.visibility_timeout,
                    )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self._cond:
            self._leased.pop(delivery.tag, None)
            dead_id = str(uuid.uuid4())
            self._dead[dead_id] = DeadLetter(
                id=dead_id,
                queue=delivery.queue,
                envelope=delivery.envelope,
                reason=reason,
                failed_at=time.time(),
            )

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self._cond:
            letters = [d for d in self._dead.values() if queue is None or d.queue == queue]
        return sorted(letters, key=lambda d: d.failed_at)[:limit]

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        with self._cond:
            letter = self._dead.pop(dead_letter_id, None)
            if letter is None:
                return False
            self._push(letter.queue, letter.envelope, 0, time.monotonic(), 0)
            self._cond.notify_all()
            return True

    def purge_dead_letters(self, queue: str | None = None) -> int:
        with self._cond:
            doomed = [key for key, d in self._dead.items() if queue is None or d.queue == queue]
            for key in doomed:
                del self._dead[key]
            return len(doomed)

    def purge(self, queue: str) -> int:
        with self._cond:
            count = len(self._queues.get(queue, []))
            self._queues[queue] = []
            return count

    def queue_length(self, queue: str) -> int:
        with self._cond:
            return len(self._queues.get(queue, []))

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        with self._cond:
            for subscription in self._subscribers.get(channel, []):
                subscription.put(envelope)

    def subscribe(self, channel: str) -> MemorySubscription:
        subscription = MemorySubscription()
        with self._cond:
            self._subscribers.setdefault(channel, []).append(subscription)
        return subscription

    def close(self) -> None:
        """Messages stay: several apps in one test may share the transport."""


class MemorySubscription:
    """One subscriber's queue of broadcast envelopes."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[Envelope] = SimpleQueue()

    def put(self, envelope: Envelope) -> None:
        self._queue.put(envelope)

    def get(self, timeout: float) -> list[Envelope]:
        try:
            received = [self._queue.get(timeout=timeout)]
        except Empty:
            return []
        while not self._queue.empty():
            received.append(self._queue.get_nowait())
        return received

    def close(self) -> None:
        """Nothing to release."""


class MemoryResultStore:
    """Results in a dict, with the SUCCESS-is-final rule of every store."""

    def __init__(self) -> None:
        self._records: dict[str, ResultRecord] = {}
        self._chords: dict[str, set[str]] = {}
        self._cond = threading.Condition()

    def store(self, record: ResultRecord) -> None:
        with self._cond:
            current = self._records.get(record.task_id)
            if current is None or current.state != SUCCESS:
                self._records[record.task_id] = record
            self._cond.notify_all()

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        for record in records:
            self.store(record)

    def get(self, task_id: str) -> ResultRecord | None:
        with self._cond:
            return self._records.get(task_id)

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                record = self._records.get(task_id)
                if record is not None and record.state in states:
                    return record
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def forget(self, task_id: str) -> None:
        with self._cond:
            self._records.pop(task_id, None)

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        with self._cond:
            parts = self._chords.setdefault(group_id, set())
            if task_id in parts:
                return False
            parts.add(task_id)
            return len(parts) == size

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        with self._cond:
            return [self._records.get(task_id) for task_id in task_ids]

    def close(self) -> None:
        """Nothing to release."""


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=("memory",),
            factory=lambda url, config: MemoryTransport(config.visibility_timeout),
            description="in-process broker for tests",
        )
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("memory",),
            factory=lambda url, config: MemoryResultStore(),
            description="in-process result store for tests",
        )
    ]
