"""The RabbitMQ transport: durable queues, confirms, manual acks, delay queues, dead letters."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import PublishTimeoutError
from celeriac.plugin import after_fork
from celeriac.plugin import exchange_of
from celeriac.plugin import redact_url
from celeriac_amqp import _dead as dead
from celeriac_amqp import _wire as wire
from celeriac_amqp._config import AmqpConfig
from celeriac_amqp._fanout import AmqpSubscription
from celeriac_amqp._fanout import Fanout
from celeriac_amqp._frames import content
from celeriac_amqp._link import Link
from celeriac_amqp._link import consumer_tag
from celeriac_amqp._publisher import Publisher
from celeriac_amqp._topology import Topology
from celeriac_amqp._topology import missing_exchange
from celeriac_amqp._topology import unroutable

if TYPE_CHECKING:
    import pika

log = logging.getLogger("celeriac.amqp")


@frozen
class AmqpTag:
    """A delivery tag with the connection it belongs to; void once that connection is gone."""

    generation: int
    delivery_tag: int


@final
class AmqpTransport:
    """``amqp://`` and ``amqps://``: one connection owned by an I/O thread (see ``_link``)."""

    def __init__(self, url: str, config: Config) -> None:
        self.settings = config.section("amqp", AmqpConfig)
        self._arguments = wire.queue_arguments(self.settings)
        self._topology = Topology(self.settings)  # checked here: a bad [amqp.queues] fails at once
        parameters = wire.connection_parameters(url, self.settings)
        self._link = Link(parameters, self.settings, self._on_connect)
        self._url = url
        self._publish_timeout = config.publish_timeout
        self._publisher = Publisher(parameters, self.settings, self._redeclare, where=redact_url(url))
        self._ready_queues: set[str] = set()  # declared for the publisher, from any thread
        self._known: set[str] = set()  # queues declared by this process (for dead_letters())
        self._warned: set[str] = set()  # queues found with other arguments, said once
        self._fresh()
        # A forked child (a prefork pool's, started by fork) publishes on connections of its own.
        after_fork(self, AmqpTransport._forget)

    def _forget(self) -> None:
        """In a process forked from this one: nothing of the parent's connections, threads,
        consumers or deliveries is this process's; the next use connects anew."""
        self._link.forget()
        self._publisher.forget()
        self._fresh()

    def _fresh(self) -> None:
        """The state of one process's connection: no consumer, delivery or ack yet."""
        self._fanout = Fanout(self._link)
        # Touched only by the I/O thread:
        self._declared: set[str] = set()
        self._consumers: dict[str, str] = {}  # consumer tag -> queue
        self._wanted: tuple[str, ...] = ()
        self._prefetch = 0
        self._unacked: dict[int, None] = {}  # delivery tags of this connection, in order
        # Acknowledgements waiting for the I/O thread (any thread adds, the I/O thread takes):
        self._acks_lock = threading.Lock()
        self._acks: list[Delivery] = []
        # Shared with the fetching thread:
        self._ready = threading.Condition()
        self._buffer: collections.deque[Delivery] = collections.deque()

    # --- connection life ----------------------------------------------------------------

    def _on_connect(self, link: Link) -> None:
        """On every (re)connect: what was delivered on the old connection is void; consume again."""
        self._declared.clear()
        self._topology.exchanges.clear()
        self._consumers.clear()
        self._unacked.clear()
        with self._acks_lock:
            # Acks of the old connection are void; and a reconnect after a refused login
            # drops queued calls, the post that would have sent these among them.
            self._acks.clear()
        with self._ready:
            self._buffer.clear()
        prefetch, self._prefetch = self._prefetch, 0
        if self._wanted:
            self._consume(link, self._wanted, prefetch)
        self._fanout.restore(link)

    def close(self) -> None:
        """Wait for outstanding publisher confirms (up to ``operation_timeout``), then close
        the connections: RabbitMQ puts back every unacknowledged message."""
        self._publisher.close(self.settings.operation_timeout)
        self._fanout.close_all()
        self._link.close()

    # --- the confirm window (celeriac.confirms.ConfirmedPublishing) ---------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until RabbitMQ confirmed everything published so far."""
        self._publisher.wait(timeout=self.settings.operation_timeout if timeout is None else timeout)

    def publish_error(self, task_id: str) -> BaseException | None:
        return self._publisher.publish_error(task_id)

    # --- declaring and publishing -------------------------------------------------------

    def declare_queue(self, queue: str) -> None:
        self._link.call(lambda link: self._declare(link, queue))

    def _declare(self, link: Link, queue: str) -> None:
        if queue in self._declared:
            return
        import pika.exceptions as errors

        try:
            link.publisher.queue_declare(queue, durable=True, arguments=self._arguments)
        except errors.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:
                raise
            # Declared before with other arguments (a Celery worker with another
            # task_queue_max_priority): use it as it is rather than refuse to work; say so
            # once per process, not at every reconnect.
            if queue not in self._warned:
                self._warned.add(queue)
                log.warning(
                    "queue %r exists with other arguments (%s); using it as declared", queue, exc.reply_text
                )
            link.publisher.queue_declare(queue, passive=True)
        link.publisher.queue_declare(queue + wire.DEAD_SUFFIX, durable=True)
        self._topology.bind(link.publisher, queue)
        self._declared.add(queue)
        self._known.add(queue)

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """Publish through the confirm window (:mod:`celeriac_amqp._publisher`).

        Delayed messages and envelopes naming an exchange in ``delivery_info`` (which go to
        that exchange with their routing key, mandatory: see :mod:`celeriac_amqp._topology`)
        are published on the other connection and wait for their confirm, so that a routing
        error is raised by this call.
        """
        if not envelopes:
            return
        try:
            self._publish_now(queue, envelopes, priority, delay)
        except TimeoutError as exc:  # the link's call, cancelled: it does not run later
            raise PublishTimeoutError(
                f"could not publish to the broker {redact_url(self._url)} within publish_timeout "
                f"({self._publish_timeout:g} s): {exc}; the message was not sent"
            ) from exc

    def _publish_now(self, queue: str, envelopes: Sequence[Envelope], priority: int, delay: float) -> None:
        target = exchange_of(envelopes[0])
        if target is not None or any(exchange_of(e) is not None for e in envelopes[1:]):
            for envelope in envelopes:  # rare: one call per destination
                self._publish_routed(exchange_of(envelope), queue, envelope, priority, delay)
            return
        if delay > 0:
            messages = [(envelope.body, wire.properties(envelope, priority)) for envelope in envelopes]
            self._link.call(
                lambda link: self._publish_delayed(link, queue, delay, messages), self._publish_timeout
            )
            return
        if queue not in self._ready_queues:
            self._link.call(lambda link: self._declare(link, queue), self._publish_timeout)
            self._ready_queues.add(queue)
        contents = [content(envelope, priority) for envelope in envelopes]
        self._publisher.publish("", queue, contents, timeout=self._publish_timeout)

    def _redeclare(self, queue: str) -> None:
        """The publisher's queue is gone (RabbitMQ returned a message): declare it again."""

        def run(link: Link) -> None:
            self._declared.discard(queue)
            self._declare(link, queue)

        self._link.call(run)

    def _publish(self, link: Link, queue: str, messages: list[tuple[bytes, pika.BasicProperties]]) -> None:
        import pika.exceptions as errors

        self._declare(link, queue)
        for body, props in messages:
            try:
                link.publisher.basic_publish("", queue, body, props, mandatory=True)
            except errors.UnroutableError:
                # The queue was deleted behind our back: declare it again and resend.
                self._declared.discard(queue)
                self._declare(link, queue)
                link.publisher.basic_publish("", queue, body, props, mandatory=True)

    def _publish_routed(
        self, target: tuple[str, str] | None, queue: str, envelope: Envelope, priority: int, delay: float
    ) -> None:
        messages = [(envelope.body, wire.properties(envelope, priority))]
        if target is None:
            if delay > 0:
                self._link.call(lambda link: self._publish_delayed(link, queue, delay, messages))
            else:
                self._link.call(lambda link: self._publish(link, queue, messages))
            return
        exchange, key = target
        if delay > 0:
            self._link.call(lambda link: self._publish_delayed(link, queue, delay, messages, target))
        else:
            self._link.call(lambda link: self._publish_to_exchange(link, exchange, key, messages))

    def _prepare_exchange(self, link: Link, exchange: str) -> None:
        """Declare the configured queues bound to the exchange (and so the exchange), so that
        a message sent before any worker started is kept; else check that it exists."""
        for queue in self._topology.queues_of.get(exchange, ()):
            self._declare(link, queue)
        self._topology.check_exchange(link.publisher, exchange)

    def _publish_to_exchange(
        self, link: Link, exchange: str, key: str, messages: list[tuple[bytes, pika.BasicProperties]]
    ) -> None:
        import pika.exceptions as errors

        self._prepare_exchange(link, exchange)
        for body, props in messages:
            try:
                link.publisher.basic_publish(exchange, key, body, props, mandatory=True)
            except errors.UnroutableError:
                raise unroutable(exchange, key) from None
            except errors.ChannelClosedByBroker as exc:  # deleted since it was checked
                self._topology.exchanges.discard(exchange)
                raise missing_exchange(exchange, exc) from None

    def _publish_delayed(
        self,
        link: Link,
        queue: str,
        delay: float,
        messages: list[tuple[bytes, pika.BasicProperties]],
        target: tuple[str, str] | None = None,
    ) -> None:
        if target is None:
            self._declare(link, queue)  # the target must exist when the messages expire into it
        else:
            self._prepare_exchange(link, target[0])
        ms = wire.delay_bucket(delay, self.settings.delay_precision)
        name, arguments = wire.delay_queue(queue, ms, self.settings, target)
        # Declared at every publish: that resets its x-expires, so it cannot vanish with messages.
        link.publisher.queue_declare(name, durable=True, arguments=arguments)
        for body, props in messages:
            link.publisher.basic_publish("", name, body, props, mandatory=True)

    # --- consuming ----------------------------------------------------------------------

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Take up to ``limit`` messages RabbitMQ pushed to this consumer, waiting up to ``timeout``."""
        wanted = tuple(queues)
        if wanted != self._wanted or limit > self._prefetch:
            # Only when the consumers or the prefetch change: a call through the I/O thread
            # costs two thread switches, which every fetch of a busy worker used to pay.
            # (Both are written by the I/O thread; on a reconnect it restores them itself.)
            self._link.call(lambda link: self._consume(link, wanted, limit))
        deadline = time.monotonic() + max(timeout, 0.0)
        taken: list[Delivery] = []
        with self._ready:
            while not self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._ready.wait(remaining):
                    break
            while self._buffer and len(taken) < limit:
                taken.append(self._buffer.popleft())
        return taken

    def _consume(self, link: Link, queues: tuple[str, ...], limit: int) -> None:
        """Consume exactly ``queues`` with a prefetch of at least ``limit`` (I/O thread)."""
        channel = link.consumer
        consumed = set(self._consumers.values())
        if limit > self._prefetch:
            # basic.qos applies to consumers started after it: restart them with the new limit.
            channel.basic_qos(prefetch_count=limit)
            self._prefetch = limit
            consumed = set()
        for tag, queue in list(self._consumers.items()):
            if queue not in queues or queue not in consumed:
                link.cancel(channel, tag)
                del self._consumers[tag]
                if queue not in queues:
                    self._give_back(link, queue)
        for queue in queues:
            if queue not in self._consumers.values():
                self._declare(link, queue)
                tag = consumer_tag()
                self._consumers[tag] = queue  # its first messages may come before consume returns
                try:
                    link.consume(channel, queue, self._on_message, auto_ack=False, tag=tag)
                except BaseException:
                    del self._consumers[tag]
                    raise
        self._wanted = queues

    def _give_back(self, link: Link, queue: str) -> None:
        with self._ready:
            kept = [d for d in self._buffer if d.queue != queue]
            dropped = [d for d in self._buffer if d.queue == queue]
            self._buffer = collections.deque(kept)
        self._settle(link, dropped, requeue=True)

    def _on_message(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        queue = self._consumers.get(method.consumer_tag, method.routing_key)
        self._unacked[method.delivery_tag] = None
        delivery = Delivery(
            envelope=wire.envelope(props, body),
            queue=queue,
            tag=AmqpTag(self._link.generation, method.delivery_tag),
            delivery_count=wire.delivery_count(props, method.redelivered),
        )
        with self._ready:
            self._buffer.append(delivery)
            self._ready.notify()

    # --- settling -----------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge, once RabbitMQ confirmed what this process published before: a task's
        message is not let go of while the messages it sent (its children) may still be lost.

        The acknowledgement is handed to the I/O thread, not waited for: nothing a caller
        could do differs if it fails (the message is delivered again), and operations asked
        for after it (a reject, a close) run after it.
        """
        if not deliveries:
            return
        self._publisher.wait(timeout=self.settings.operation_timeout)
        with self._acks_lock:
            posting = not self._acks
            self._acks.extend(deliveries)
        if posting:  # else the post on its way takes these too: one basic.ack for them all
            self._link.post(self._send_acks)
        else:
            self._link.check()  # that post may have been dropped with a stopped thread

    def _send_acks(self, link: Link) -> None:
        with self._acks_lock:
            deliveries, self._acks = self._acks, []
        self._settle(link, deliveries, requeue=None)

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        if deliveries:
            self._link.call(lambda link: self._settle(link, deliveries, requeue=requeue))

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to do: RabbitMQ has no lease; an unacked message stays with its consumer
        until it is acked or the connection closes (or ``consumer_timeout`` passes)."""

    def _settle(self, link: Link, deliveries: Sequence[Delivery], requeue: bool | None) -> None:
        """Ack (``requeue`` None) or reject this connection's deliveries; drop stale ones."""
        tags: set[int] = set()
        for delivery in deliveries:
            tag: AmqpTag = delivery.tag
            if tag.generation == link.generation and tag.delivery_tag in self._unacked:
                tags.add(tag.delivery_tag)
            else:
                log.debug("dropping the settlement of a delivery from a closed connection")
        if not tags:
            return
        channel = link.consumer
        if requeue is None:
            # multiple=True acks every outstanding tag up to N: only safe for a prefix of them.
            prefix = 0
            for outstanding in self._unacked:
                if outstanding not in tags:
                    break
                prefix = outstanding
            if prefix and sum(1 for t in tags if t <= prefix) > 1:
                channel.basic_ack(prefix, multiple=True)
                tags = {t for t in tags if t > prefix}
                for t in [t for t in self._unacked if t <= prefix]:
                    del self._unacked[t]
        for t in sorted(tags):
            if requeue is None:
                channel.basic_ack(t)
            else:
                channel.basic_nack(t, requeue=requeue)
            del self._unacked[t]

    # --- dead letters -------------------------------------------------------------------

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Publish a copy to ``<queue>.dead`` with the reason (confirmed), then ack the original."""
        props = dead.dead_properties(delivery.envelope, reason)

        def run(link: Link) -> None:
            self._declare(link, delivery.queue)
            link.publisher.basic_publish("", delivery.queue + wire.DEAD_SUFFIX, delivery.envelope.body, props)
            self._settle(link, [delivery], requeue=None)

        self._link.call(run)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Read dead letters without taking them (see :mod:`celeriac_amqp._dead`)."""
        queues = [queue] if queue is not None else sorted(self._known)
        return self._link.call(lambda link: dead.peek(link.connection, queues, limit))

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        queue, _, wanted = dead_letter_id.rpartition(":")
        if not queue:
            return False

        def run(link: Link) -> bool:
            def publish(body: bytes, props: pika.BasicProperties) -> None:
                self._publish(link, queue, [(body, props)])

            return dead.requeue(link.connection, queue, wanted, publish)

        return self._link.call(run)

    def purge_dead_letters(self, queue: str | None = None) -> int:
        """Purge ``<queue>.dead`` (None: those :meth:`dead_letters` lists, of the queues this
        process declared) and count what was deleted. Dead letters held unacked at that moment
        (by a listing on another connection) stay."""
        queues = [queue] if queue is not None else sorted(self._known)
        return self._link.call(lambda link: sum(dead.purge(link.publisher, name) for name in queues))

    # --- inspection ---------------------------------------------------------------------

    def purge(self, queue: str) -> int:
        """Delete the ready messages of a queue (not those held unacked by consumers), once
        what this process published is confirmed (so it is among them)."""
        self.flush()

        def run(link: Link) -> int:
            import pika.exceptions as errors

            try:
                return int(link.publisher.queue_purge(queue).method.message_count)
            except errors.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return 0
                raise

        return self._link.call(run)

    def queue_length(self, queue: str) -> int:
        """Ready messages of the queue, this process's unconfirmed publishes included (it
        waits for their confirms); unacked and delayed ones are not counted."""
        self.flush()

        def run(link: Link) -> int:
            import pika.exceptions as errors

            try:
                return int(link.publisher.queue_declare(queue, passive=True).method.message_count)
            except errors.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return 0
                raise

        return self._link.call(run)

    # --- broadcast ----------------------------------------------------------------------

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        self._fanout.broadcast(channel, envelope)

    def subscribe(self, channel: str) -> AmqpSubscription:
        return self._fanout.subscribe(channel)

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        self._fanout.send_reply(exchange, routing_key, envelope)

    def reply_queue(self, exchange: str, routing_key: str) -> AmqpSubscription:
        return self._fanout.reply_queue(exchange, routing_key)
