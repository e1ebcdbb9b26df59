"""The interfaces plugins implement: transports, result stores, pools, serializers, sinks.

Each is a small :class:`typing.Protocol`. Plugins announce implementations through the
``celeriac_add_*`` hooks as *specs*: a name or URL schemes plus a factory. The kernel
picks one by configured name or URL scheme, so a plugin is never constructed unless used.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from celeriac._model.records import DeadLetter
from celeriac._model.records import Delivery
from celeriac._model.records import Envelope
from celeriac._model.records import ResultRecord

if TYPE_CHECKING:
    from celeriac._model.outcome import Outcome
    from celeriac._model.request import TaskRequest


@runtime_checkable
class Transport(Protocol):
    """A broker connection: at-least-once delivery of envelopes to named queues.

    A message fetched and not acknowledged comes back when its lease (visibility timeout)
    runs out, or at once when rejected with ``requeue=True``. Delayed delivery is the
    transport's job, so a worker never holds an ETA message.
    Methods may be called from several threads of one process.
    """

    def declare_queue(self, queue: str) -> None:
        """Create the queue if the broker needs it to exist before use."""

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """Store the envelopes durably; they become visible after ``delay`` seconds.

        Higher ``priority`` is served first (0-9, as on AMQP).
        """

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Reserve up to ``limit`` visible messages, waiting at most ``timeout`` seconds for one."""

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove processed messages for good."""

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Give messages back to their queue (``requeue``) or drop them."""

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew the lease of messages still being worked on."""

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a message to the dead-letter store with the reason, atomically with its ack."""

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """List dead-lettered messages, oldest first."""

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        """Put a dead-lettered message back on its queue; False if the id is unknown."""

    def purge(self, queue: str) -> int:
        """Delete every waiting message of a queue and return how many there were."""

    def queue_length(self, queue: str) -> int:
        """Count the messages waiting in a queue (delayed ones included)."""

    def close(self) -> None:
        """Release connections; the transport is not used afterwards."""


@runtime_checkable
class DeadLetterPurger(Protocol):
    """Deleting dead letters for good, an optional capability of a transport.

    ``isinstance(transport, DeadLetterPurger)`` tells whether a transport has it;
    ``celeriac dead-letters purge`` and the dashboard's purge button use it.
    """

    def purge_dead_letters(self, queue: str | None = None) -> int:
        """Delete the dead letters of ``queue``, or of every queue :meth:`Transport.dead_letters`
        lists when None, and return how many were deleted."""


@runtime_checkable
class Subscription(Protocol):
    """Messages broadcast to one fan-out channel since the subscription started."""

    def get(self, timeout: float) -> list[Envelope]:
        """Return what arrived, waiting at most ``timeout`` seconds for the first message."""

    def close(self) -> None: ...


@runtime_checkable
class Broadcaster(Protocol):
    """Fan-out, an optional capability of a transport: every subscriber gets every message.

    Used for remote control and monitoring events. Delivery is at-most-once: a subscriber
    that is not listening misses what is sent meanwhile, as with AMQP fan-out exchanges
    and Redis pub/sub. ``isinstance(transport, Broadcaster)`` tells whether a transport has it.
    """

    def broadcast(self, channel: str, envelope: Envelope) -> None: ...

    def subscribe(self, channel: str) -> Subscription: ...


@runtime_checkable
class DirectReplies(Protocol):
    """Replies routed by a direct exchange, as kombu's pidbox routes them: an optional
    capability of a transport that shares its broker with Celery.

    A client binds a queue of its own to ``exchange`` under a routing key and names both in
    the request's ``reply_to``; whoever answers publishes to that exchange with that key.
    The queue is Celery's ``<routing key>.<exchange>``, so a Celery client's queue is reached
    the same way. Delivery is at-most-once, like :class:`Broadcaster`: a reply to a queue no
    longer bound is dropped. Transports without it answer on a fan-out channel instead.
    """

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Deliver the envelope to every queue bound to ``exchange`` under ``routing_key``."""

    def reply_queue(self, exchange: str, routing_key: str) -> Subscription:
        """Declare and bind a queue for replies sent under ``routing_key``, ready before this
        returns; closing the subscription unbinds and deletes it."""


@runtime_checkable
class ResultStore(Protocol):
    """Where task states and return values are kept for ``AsyncResult``.

    ``store`` must never replace a SUCCESS record: a duplicate run after a redelivery
    cannot undo a result a client may already have read.
    """

    def store(self, record: ResultRecord) -> None:
        """Save a state; later states replace earlier ones, except over SUCCESS."""

    def get(self, task_id: str) -> ResultRecord | None:
        """Return the record, or None when nothing is known (PENDING)."""

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Block until the task reaches one of ``states`` or the timeout passes (None then)."""

    def forget(self, task_id: str) -> None:
        """Delete what is stored for the task."""

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        """Records of several tasks in the order asked, in as few round trips as the store allows."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class ChordCounter(Protocol):
    """Atomic counting of a chord's finished header tasks, an optional result-store capability."""

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        """Record that ``task_id`` (at ``index`` in the group) finished; True for exactly one
        caller: the one whose call completed the count. Idempotent per task id, so a
        redelivered header task cannot complete a chord twice or early."""


@runtime_checkable
class StartLedger(Protocol):
    """Counts how often each message's task was started, somewhere that outlives the worker
    (the broker, a result store): an optional capability of a transport or a result store.

    The worker records a start before it runs a late-acknowledged task, forgets the starts
    once the task finished, and reads the count when the message comes back, so a task that
    kills its worker (``os._exit``, a segfault) is dead-lettered after
    ``worker.max_deliveries`` starts on any broker, and messages that were only prefetched
    (or had finished) when the worker died are not counted. ``key`` names one message (task
    id and retry number); entries expire on their own after ``START_LEDGER_TTL``.
    """

    def record_start(self, key: str) -> int:
        """Count a start of message ``key``; how many starts so far, this one included."""

    def starts(self, key: str) -> int:
        """How many times message ``key`` was started (0 if never)."""

    def forget_starts(self, key: str) -> None:
        """Forget the starts of message ``key``: its task finished, so it is not one that
        kills its worker (its message may still come back, if the worker died before
        acknowledging it, and must not be counted as a poison's)."""


#: Seconds a start ledger keeps a message's count after its last start.
START_LEDGER_TTL = 7 * 24 * 3600


@runtime_checkable
class CeleryChords(Protocol):
    """A result store shared with Celery, whose workers count chord parts their own way: an
    optional capability, so a chord sent here can be finished by Celery workers, and one sent
    by a Celery client (which saves no group) by workers here."""

    def chord_started(self, group_id: str, size: int) -> None:
        """Note a chord's size where Celery's workers look for it, before its header is sent."""

    def chord_members(self, group_id: str) -> list[str]:
        """The ids of the chord's finished header tasks, in group order."""


@runtime_checkable
class BatchStore(Protocol):
    """Saving several records in one round trip, an optional result-store capability: a pool
    that finishes many tasks at once (asyncio, gevent) stores their results together."""

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        """``store`` each record, with the same rule (SUCCESS is never replaced), in as few
        round trips as the store allows."""


class PendingWrite(Protocol):
    """A record handed to a store to be written a moment later (see :class:`DeferredStore`)."""

    def finished(self, timeout: float = 0.0) -> bool:
        """Has the write finished, so that :meth:`wait` returns or raises at once? Also True
        once the store's time limit for it has passed. Waits up to ``timeout`` seconds for
        that, returning as soon as it happens."""

    def wait(self) -> None:
        """Return once the record is written; raise why it could not be (``TimeoutError``
        after the store's own time limit, counted from the hand-over)."""


@runtime_checkable
class DeferredStore(Protocol):
    """Handing a record over without waiting for the write, an optional result-store
    capability: a store that writes through a connection's own thread (``rpc://``) lets the
    worker's pool threads go on while the record is written. The worker settles the task's
    message only once the :class:`PendingWrite` finished (other messages are settled
    meanwhile), so a message is never let go of while its result may still be unwritten; a
    write that fails gives the message back. Only the worker's own process hands records
    over (a pool child may send its records to the worker, which hands them over), and only
    for tasks without a workflow to continue (callbacks, chains), which would otherwise be
    sent again when a failed write makes the task run again."""

    def store_deferred(self, record: ResultRecord) -> PendingWrite:
        """Hand ``record`` over to be written as :meth:`ResultStore.store` would write it, in
        order with this store's other writes from this process."""


@runtime_checkable
class SharedRateLimiter(Protocol):
    """A rate limit shared by every worker using the same store (``global_rate_limit``), an
    optional capability of a transport or result store."""

    def reserve_slot(self, key: str, interval: float, max_wait: float) -> float:
        """Book the next free slot of ``key``, slots being ``interval`` seconds apart, and
        return the seconds until it (0: now). When that is more than ``max_wait``, book
        nothing and return it all the same, so the caller can come back later."""


@runtime_checkable
class ReplyQueue(Protocol):
    """Results come back as messages to a queue of the client's own (``rpc://``), an optional
    result-store capability: the app names that queue in ``reply_to`` of every task it sends,
    and workers hand the store records carrying it (:attr:`ResultRecord.reply_to`)."""

    def reply_queue(self) -> str:
        """Declare the reply queue if needed and return its name; called for every message
        sent, so cheap after the first call."""


@runtime_checkable
class Serializer(Protocol):
    """Turns Python values into bytes and back for one content type.

    A serializer that wraps another (a signing one) may define ``bind(codec)``: it is called
    once every serializer is known, so it can look its inner one up with ``codec.serializer``.
    """

    name: str
    content_type: str
    content_encoding: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@runtime_checkable
class Compressor(Protocol):
    """Compresses message bodies; ``content_type`` is the value of the ``compression`` header.

    A compressor may also have an int ``threshold``: bodies shorter than that are sent as they
    are (small bodies gain nothing). It is optional, so it is read with ``getattr``.
    """

    # Read-only: a plain attribute satisfies it, and so does a frozen attrs field.
    @property
    def name(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


@runtime_checkable
class Pool(Protocol):
    """Runs task requests concurrently and reports each outcome through a callback.

    ``submit`` must not block for long: the consumer never hands a pool more requests than
    ``limit`` plus the prefetch allowance. Callbacks may run on any thread.
    """

    @property
    def limit(self) -> int:
        """How many requests run at once."""

    def start(self) -> None: ...

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        """Queue a request; call ``on_start`` just before it runs and ``on_done`` with its outcome.

        ``on_start`` is where early-acknowledged tasks are acknowledged, so it must be
        called before the task function runs.
        """

    def cancel_pending(self) -> list[TaskRequest]:
        """Drop requests that have not started and return them, so they can be requeued."""

    def stop(self, *, wait: bool) -> None:
        """Stop; ``wait`` lets running requests finish (warm), otherwise abandon them (cold)."""


@runtime_checkable
class EventSink(Protocol):
    """Receives monitoring events (flat dicts shaped like Celery's events)."""

    def send(self, event: Mapping[str, Any]) -> None:
        """Deliver or buffer one event; must be cheap, it runs on the worker's hot path."""

    def close(self) -> None: ...


@runtime_checkable
class ScheduleStore(Protocol):
    """Persists beat's last-run times so they survive restarts."""

    def last_run_at(self, entry: str) -> float | None: ...

    def set_last_run_at(self, entry: str, when: float) -> None: ...

    def close(self) -> None: ...
