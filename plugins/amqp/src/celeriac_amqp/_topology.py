"""Task queues bound to named exchanges, from ``[amqp.queues]``, as Celery's ``task_queues``.

Exchanges are declared as kombu's ``Exchange`` declares them by default (durable, not
auto-delete), so Celery and celeriac declare them alike on one vhost. Publishing to an
exchange is mandatory and confirmed: an exchange that does not exist, or that routes the
key to no queue, raises :class:`~celeriac.RoutingError` naming it, where RabbitMQ
would otherwise drop the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import final

from celeriac.plugin import ConfigError
from celeriac.plugin import RoutingError
from celeriac_amqp._config import AmqpBinding
from celeriac_amqp._config import AmqpConfig

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel


@final
class Topology:
    """The bindings of the configured queues, checked once; what was declared, per connection."""

    def __init__(self, settings: AmqpConfig) -> None:
        self.bindings: Mapping[str, tuple[AmqpBinding, ...]] = {
            name: queue.all_bindings(name) for name, queue in settings.queues.items()
        }
        self.types: dict[str, str] = {}
        self.queues_of: dict[str, list[str]] = {}
        for queue, bindings in self.bindings.items():
            if settings.queues[queue].routing_key is not None and settings.queues[queue].exchange is None:
                raise ConfigError(f"[amqp.queues.{queue}] routing_key is set without an exchange")
            for binding in bindings:
                self._add(queue, binding)
        #: Exchanges known to exist on the current connection; cleared at every reconnect.
        self.exchanges: set[str] = set()

    def _add(self, queue: str, binding: AmqpBinding) -> None:
        name = binding.exchange
        if not name or name.startswith("amq."):
            raise ConfigError(
                f"[amqp.queues.{queue}] exchange {name!r} cannot be bound: it is RabbitMQ's own "
                "(every queue is already on the default exchange under its name)"
            )
        known = self.types.setdefault(name, binding.exchange_type)
        if known != binding.exchange_type:
            raise ConfigError(
                f"[amqp.queues] exchange {name!r} is declared both {known!r} and "
                f"{binding.exchange_type!r} (queue {queue!r}); an exchange has one type"
            )
        if queue not in self.queues_of.setdefault(name, []):
            self.queues_of[name].append(queue)

    def bind(self, channel: BlockingChannel, queue: str) -> None:
        """Declare the exchanges of a declared queue and bind it to them (I/O thread)."""
        for binding in self.bindings.get(queue, ()):
            self.declare_exchange(channel, binding.exchange)
            channel.queue_bind(queue, binding.exchange, routing_key=binding.routing_key)

    def declare_exchange(self, channel: BlockingChannel, exchange: str) -> None:
        if exchange not in self.exchanges:
            channel.exchange_declare(exchange, exchange_type=self.types[exchange], durable=True)
            self.exchanges.add(exchange)

    def check_exchange(self, channel: BlockingChannel, exchange: str) -> None:
        """Make sure the exchange exists, without declaring it (it has no type here)."""
        if exchange in self.exchanges:
            return
        import pika.exceptions as errors

        try:
            channel.exchange_declare(exchange, passive=True)
        except errors.ChannelClosedByBroker as exc:
            raise missing_exchange(exchange, exc) from None
        self.exchanges.add(exchange)


def missing_exchange(exchange: str, exc: BaseException) -> Exception:
    """A 404 from RabbitMQ as a :class:`RoutingError` naming the exchange; others as they are."""
    if getattr(exc, "reply_code", None) == 404:
        return RoutingError(
            f"RabbitMQ has no exchange {exchange!r}: declare it with a queue bound to it "
            f"([amqp.queues.<queue>] exchange = {exchange!r}) or start a worker that does"
        )
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def unroutable(exchange: str, routing_key: str) -> RoutingError:
    return RoutingError(
        f"RabbitMQ exchange {exchange!r} routes the routing key {routing_key!r} to no queue: "
        "the message was not queued (bind a queue to it: [amqp.queues.<queue>])"
    )
