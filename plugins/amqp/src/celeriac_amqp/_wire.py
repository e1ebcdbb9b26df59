"""Envelopes to AMQP messages and back, with Celery's mapping, and the names of things.

Celery's protocol 2 on AMQP: the headers are the AMQP headers table, the body is raw bytes,
and ``correlation_id``, ``reply_to``, ``priority``, ``delivery_mode``, ``content_type`` and
``content_encoding`` are AMQP properties. Messages go to the default exchange ``""`` with the
queue name as routing key, as Celery's default direct routing does, unless the envelope's
``delivery_info`` names an exchange (``apply_async(exchange=..., routing_key=...)``).
"""

from __future__ import annotations

import math
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from celeriac.plugin import ConfigError
from celeriac.plugin import Envelope

if TYPE_CHECKING:
    import pika

    from celeriac_amqp._config import AmqpConfig

SCHEMES = ("amqp", "amqps")
DEAD_SUFFIX = ".dead"
DELAY_PREFIX = "celeriac.delay."
REASON = "x-celeriac-reason"
FAILED_AT = "x-celeriac-failed-at"
DEAD_ID = "x-celeriac-dead-letter-id"
_DEAD_HEADERS = frozenset({REASON, FAILED_AT, DEAD_ID})
#: Headers RabbitMQ adds when it dead-letters (a delay queue's expiry): not part of the task.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")
#: Broadcast channels Celery (kombu) declares, with its exchange type and durability, so that
#: both declare them alike on one vhost; any other channel is a transient fanout exchange.
EXCHANGES: Mapping[str, tuple[str, bool]] = {
    "celery.pidbox": ("fanout", False),
    "reply.celery.pidbox": ("direct", False),
    "celeryev": ("topic", True),
}


def connection_parameters(url: str, settings: AmqpConfig) -> pika.URLParameters:
    """pika's parameters for the URL, with heartbeats, timeouts and TLS from ``[amqp]``."""
    import pika

    parameters = pika.URLParameters(url)
    # kombu's convention, which Celery URLs follow: the vhost is the whole path after the
    # first slash ("amqp://host//" is vhost "/"); pika would read "//" as the empty vhost.
    path = urllib.parse.urlsplit(url).path
    parameters.virtual_host = urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"
    parameters.heartbeat = settings.heartbeat
    parameters.connection_attempts = settings.connection_attempts
    parameters.socket_timeout = settings.socket_timeout
    parameters.blocked_connection_timeout = settings.operation_timeout
    parameters.client_properties = {"connection_name": "celeriac"}
    if url.startswith("amqps:"):
        parameters.ssl_options = pika.SSLOptions(tls_context(settings), server_hostname=parameters.host)
    return parameters


def tls_context(settings: AmqpConfig) -> ssl.SSLContext:
    """The TLS context of ``amqps://`` from ``[amqp] ssl_*``; a bad file is a ConfigError naming it."""
    try:
        context = ssl.create_default_context(cafile=settings.ssl_ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[amqp] ssl_ca_certs {settings.ssl_ca_certs!r} cannot be used: {exc}") from exc
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"[amqp] ssl_certfile {settings.ssl_certfile!r} / ssl_keyfile {settings.ssl_keyfile!r} "
                f"cannot be used: {exc}"
            ) from exc
    elif settings.ssl_keyfile:
        raise ConfigError("[amqp] ssl_keyfile is set without ssl_certfile")
    context.check_hostname = settings.ssl_check_hostname and settings.ssl_verify
    if not settings.ssl_verify:
        context.verify_mode = ssl.CERT_NONE
    return context


def queue_arguments(settings: AmqpConfig) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if settings.queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
    elif settings.max_priority > 0:
        arguments["x-max-priority"] = settings.max_priority
    if settings.message_ttl is not None:
        arguments["x-message-ttl"] = int(settings.message_ttl * 1000)
    return arguments


def delay_bucket(delay: float, digits: int) -> int:
    """The delay in milliseconds rounded *up* to ``digits`` significant digits: never early."""
    ms = max(math.ceil(delay * 1000), 1)
    step = 10 ** max(len(str(ms)) - max(digits, 1), 0)
    bucket: int = -(-ms // step) * step
    return bucket


def delay_queue(
    queue: str, ms: int, settings: AmqpConfig, target: tuple[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The delay queue of one bucket and target: its messages expire into the target queue,
    or into the ``target`` exchange under its routing key."""
    exchange, key = target if target is not None else ("", queue)
    arguments = {
        "x-message-ttl": ms,
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": key,
        # Redeclared at every delayed publish, so it outlives its last message by this much.
        "x-expires": ms + int(settings.delay_queue_expires * 1000),
    }
    # "|" keeps an exchange's delay queues apart from those of a queue named alike.
    name = f"{DELAY_PREFIX}{ms}.{queue}" if target is None else f"{DELAY_PREFIX}{ms}.{exchange}|{key}"
    return name, arguments


def properties(envelope: Envelope, priority: int, *, persistent: bool = True) -> pika.BasicProperties:
    """AMQP properties for an envelope; the header table is written by our codec (floats included)."""
    from celeriac_amqp._properties import AmqpProperties

    props = envelope.properties
    chosen = priority or props.get("priority")
    return AmqpProperties(
        content_type=envelope.content_type,
        content_encoding=envelope.content_encoding,
        headers=dict(envelope.headers),
        delivery_mode=2 if persistent else 1,
        priority=min(max(int(chosen), 0), 255) if chosen else None,
        correlation_id=props.get("correlation_id") or None,
        reply_to=props.get("reply_to") or None,
    )


def envelope(props: pika.BasicProperties, body: bytes, *, keep_dead_headers: bool = False) -> Envelope:
    headers = {
        key: value
        for key, value in (props.headers or {}).items()
        if not key.startswith(_BROKER_HEADERS) and (keep_dead_headers or key not in _DEAD_HEADERS)
    }
    found: dict[str, Any] = {}
    for name in ("correlation_id", "reply_to", "priority", "delivery_mode"):
        value = getattr(props, name)
        if value is not None:
            found[name] = value
    return Envelope(
        body=body,
        content_type=props.content_type or "application/json",
        content_encoding=props.content_encoding or "utf-8",
        headers=headers,
        properties=found,
    )


def delivery_count(props: pika.BasicProperties, redelivered: bool) -> int:
    """Quorum queues count deliveries; classic ones only say "redelivered" (counted as 2)."""
    count = (props.headers or {}).get("x-delivery-count")
    if isinstance(count, int):
        return count + 1
    return 2 if redelivered else 1
