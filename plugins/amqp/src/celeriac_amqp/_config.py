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

    :param max_priority: the ``x-max-priority`` argument of every task queue; 0 (the
        default, as Celery's ``task_queue_max_priority = None``) declares queues without it,
        so Celery and celeriac declare the same queue alike. Set it (10 for priorities 0-9)
        to turn priorities on; a Celery worker on the same queues then needs the same
        ``task_queue_max_priority``.
    :param queue_type: ``classic`` (the default, as Celery's) or ``quorum``. Quorum queues
        count deliveries (``x-delivery-count``), so poison messages are detected exactly.
    :param confirms: ``async`` (the default): ``publish()`` returns once the message is in
        the confirm window, and RabbitMQ's confirms are tracked in the background (a nack or
        a lost connection publishes it again; a message refused for good is reported by the
        next publish, ``app.flush()`` and its result's ``get()``). ``strict``: ``publish()``
        returns once RabbitMQ confirmed the message.
    :param confirm_window: the most messages waiting for their confirm; ``publish()`` waits
        while the window is full. Also the most a process killed outright may take with it.
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

    max_priority: int = 0
    confirms: Literal["async", "strict"] = "async"
    confirm_window: int = 1000
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
