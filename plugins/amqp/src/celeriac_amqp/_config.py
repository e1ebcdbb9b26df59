"""The ``[amqp]`` configuration section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field
from attrs import frozen

ExchangeType = Literal["direct", "topic", "fanout"]


@frozen(kw_only=True)
class AmqpBinding:
    """One more binding of a queue: ``bindings = [{exchange = "media", routing_key = "media.*"}]``.

    :param exchange: the exchange, declared durable (as Celery's ``Exchange``) if missing.
    :param exchange_type: ``direct`` (the default, as Celery's), ``topic`` or ``fanout``.
    :param routing_key: the binding key (a pattern on a topic exchange); default the queue's name.
    """

    exchange: str
    exchange_type: ExchangeType = "direct"
    routing_key: str | None = None


@frozen(kw_only=True)
class AmqpQueue:
    """``[amqp.queues.<name>]``: a task queue bound to exchanges, as Celery's ``task_queues``.

    ``exchange``, ``exchange_type`` and ``routing_key`` give one binding (Celery's
    ``Queue(name, Exchange(exchange, type=...), routing_key=...)``); ``bindings`` adds more.
    The queue, its exchanges and bindings are declared when a worker consumes the queue and
    when a client publishes to the queue or to one of its exchanges.
    """

    exchange: str | None = None
    exchange_type: ExchangeType = "direct"
    routing_key: str | None = None
    bindings: tuple[AmqpBinding, ...] = field(default=(), converter=tuple)

    def all_bindings(self, name: str) -> tuple[AmqpBinding, ...]:
        """Every binding of the queue called ``name``, routing keys defaulted to that name."""
        first = (
            (
                AmqpBinding(
                    exchange=self.exchange, exchange_type=self.exchange_type, routing_key=self.routing_key
                ),
            )
            if self.exchange is not None
            else ()
        )
        return tuple(
            AmqpBinding(
                exchange=b.exchange,
                exchange_type=b.exchange_type,
                routing_key=b.routing_key if b.routing_key is not None else name,
            )
            for b in (*first, *self.bindings)
        )


@frozen(kw_only=True)
class AmqpConfig:
    """``[amqp]``: how the RabbitMQ transport declares, publishes and reconnects.

    :param max_priority: the ``x-max-priority`` argument of every task queue (celeriac
        priorities are 0-9); 0 declares queues without it. A Celery worker on the same queues
        must declare them alike: ``task_queue_max_priority = 10``.
    :param queue_type: ``classic`` (the default, as Celery's) or ``quorum``. Quorum queues
        count deliveries (``x-delivery-count``), so poison messages are detected exactly.
    :param message_ttl: an ``x-message-ttl`` in seconds for task queues; None for none.
    :param delay_precision: significant digits of a delay bucket: a delay is rounded *up* to
        this many digits of milliseconds (3: at most 1 % late, never early).
    :param delay_queue_expires: seconds an unused delay queue lives after its delay ran out.
    :param heartbeat: AMQP heartbeat in seconds (0 disables them).
    :param connection_attempts: attempts per connect before backing off.
    :param retry_backoff_base: first pause between reconnects; doubles up to ``retry_backoff_max``.
    :param operation_timeout: seconds a call waits for the broker (or for a reconnect) before
        raising :class:`TimeoutError`.
    :param rpc_queue_expires: seconds the reply queue of an ``rpc://`` client is kept once
        unused (its ``x-expires``): long enough to outlive a reconnect, short enough that
        the queues of clients that have gone do not pile up.
    :param queues: task queues bound to exchanges, by queue name (``[amqp.queues.media]``,
        see :class:`AmqpQueue`); a queue not listed is bound to the default exchange only.
    :param ssl_*: TLS for ``amqps://`` URLs: CA bundle, client certificate and key, whether
        the server's certificate and host name are checked.
    """

    max_priority: int = 10
    queue_type: Literal["classic", "quorum"] = "classic"
    message_ttl: float | None = None
    delay_precision: int = 3
    delay_queue_expires: float = 300.0
    heartbeat: int = 60
    connection_attempts: int = 1
    socket_timeout: float = 10.0
    retry_backoff_base: float = 0.2
    retry_backoff_max: float = 10.0
    operation_timeout: float = 60.0
    rpc_queue_expires: float = 300.0
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_verify: bool = True
    ssl_check_hostname: bool = True
    queues: Mapping[str, AmqpQueue] = field(factory=dict)
