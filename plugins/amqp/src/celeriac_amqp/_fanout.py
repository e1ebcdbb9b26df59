"""Broadcast: one exchange per channel, one exclusive auto-delete queue per subscriber.

``celery.pidbox`` is a fanout exchange and ``celeryev`` a topic one, declared with the flags
kombu uses so Celery and celeriac can share a vhost. Delivery is at-most-once: messages are
transient and consumed without acknowledgement, and a subscriber's queue exists only while
its connection does (it is declared again, empty, after a reconnect).

Remote-control replies go as kombu's pidbox sends them: to the direct exchange named in the
request's ``reply_to`` under its routing key. A client's reply queue is Celery's
``<routing key>.<exchange>``, declared with the flags and arguments of Celery's own.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import Envelope
from celeriac_amqp import _wire as wire

if TYPE_CHECKING:
    import pika

    from celeriac_amqp._link import Link


#: Celery's reply queue arguments: ``control_queue_expires`` (10 s), ``control_queue_ttl`` (300 s).
REPLY_QUEUE_ARGUMENTS: Mapping[str, Any] = {"x-expires": 10_000, "x-message-ttl": 300_000}


def _kind(channel: str) -> tuple[str, bool]:
    return wire.EXCHANGES.get(channel, ("fanout", False))


def _routing_key(channel: str, envelope: Envelope | None) -> str:
    kind, _ = _kind(channel)
    if kind == "fanout":
        return ""
    if kind == "topic":
        # Celery routes events by type ("task.succeeded", "task.multi"), named as kombu
        # records it in properties.delivery_info; subscribers here bind to "#".
        if envelope is not None:
            return _named_key(envelope) or "celeriac.events"
        return "#"
    return channel


def _named_key(envelope: Envelope) -> str:
    info = envelope.properties.get("delivery_info")
    if isinstance(info, Mapping) and info.get("routing_key"):
        return str(info["routing_key"])
    return str(envelope.headers.get("routing_key") or "")  # the older place, still honoured


@final
class Fanout:
    """Broadcasts and subscriptions over one :class:`Link` (state kept on its I/O thread)."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._exchanges: set[str] = set()
        self._subscriptions: dict[int, AmqpSubscription] = {}
        self._ids = itertools.count(1)

    def _exchange(self, link: Link, channel: str, direct: bool = False) -> None:
        if channel not in self._exchanges:
            # A reply exchange is direct and transient whatever its name (kombu's pidbox).
            kind, durable = ("direct", False) if direct else _kind(channel)
            link.publisher.exchange_declare(channel, exchange_type=kind, durable=durable)
            self._exchanges.add(channel)

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        props = wire.properties(envelope, 0, persistent=False)
        key = _routing_key(channel, envelope)

        def run(link: Link) -> None:
            self._exchange(link, channel)
            link.publisher.basic_publish(channel, key, envelope.body, props)

        self._link.call(run)

    def subscribe(self, channel: str) -> AmqpSubscription:
        """Bind a queue of our own and start consuming before returning: nothing sent after is missed."""
        subscription = AmqpSubscription(self, next(self._ids), channel)
        self._link.call(lambda link: self._start(link, subscription))
        return subscription

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Publish to the direct exchange under the routing key, transient and unconfirmed."""
        props = wire.properties(envelope, 0, persistent=False)

        def run(link: Link) -> None:
            self._exchange(link, exchange, direct=True)
            link.unconfirmed.basic_publish(exchange, routing_key, envelope.body, props)

        self._link.call(run)

    def reply_queue(self, exchange: str, routing_key: str) -> AmqpSubscription:
        """Celery's reply queue ``<routing key>.<exchange>``, bound and consumed before returning."""
        subscription = AmqpSubscription(
            self, next(self._ids), exchange, queue_name=f"{routing_key}.{exchange}", routing_key=routing_key
        )
        self._link.call(lambda link: self._start(link, subscription))
        return subscription

    def _start(self, link: Link, subscription: AmqpSubscription) -> None:
        reply = subscription.routing_key is not None
        self._exchange(link, subscription.channel, direct=reply)
        channel = link.consumer
        arguments = dict(REPLY_QUEUE_ARGUMENTS) if reply else None
        declared = channel.queue_declare(
            subscription.queue_name, exclusive=True, auto_delete=True, arguments=arguments
        )
        name = declared.method.queue
        key = subscription.routing_key if reply else _routing_key(subscription.channel, None)
        channel.queue_bind(name, subscription.channel, routing_key=key)
        subscription.consumer_tag = channel.basic_consume(name, subscription.on_message, auto_ack=True)
        subscription.generation = link.generation
        self._subscriptions[subscription.id] = subscription

    def restore(self, link: Link) -> None:
        """After a reconnect: exchanges and subscriber queues are declared again."""
        self._exchanges.clear()
        for subscription in list(self._subscriptions.values()):
            self._start(link, subscription)

    def unsubscribe(self, subscription: AmqpSubscription) -> None:
        def run(link: Link) -> None:
            self._subscriptions.pop(subscription.id, None)
            if subscription.generation == link.generation and subscription.consumer_tag:
                link.consumer.basic_cancel(subscription.consumer_tag)  # its queue auto-deletes

        # When the connection is closed or gone, so is the queue.
        with contextlib.suppress(RuntimeError, TimeoutError):
            self._link.call(run, timeout=5.0)

    def close_all(self) -> None:
        self._subscriptions.clear()


@final
class AmqpSubscription:
    """Broadcast envelopes of one channel, buffered by the I/O thread until :meth:`get`."""

    def __init__(
        self,
        fanout: Fanout,
        number: int,
        channel: str,
        queue_name: str = "",
        routing_key: str | None = None,
    ) -> None:
        self._fanout = fanout
        self.id = number
        self.channel = channel
        #: The queue's name, or "" for one named by the broker; a routing key makes it a reply queue.
        self.queue_name = queue_name
        self.routing_key = routing_key
        self.consumer_tag = ""
        self.generation = 0
        self._received: queue.SimpleQueue[Envelope] = queue.SimpleQueue()

    def on_message(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        self._received.put(wire.envelope(props, body))

    def get(self, timeout: float) -> list[Envelope]:
        received: list[Envelope] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            received.append(self._received.get(timeout=max(deadline - time.monotonic(), 0.0)))
            while True:
                received.append(self._received.get_nowait())
        except queue.Empty:
            pass
        return received

    def close(self) -> None:
        self._fanout.unsubscribe(self)
