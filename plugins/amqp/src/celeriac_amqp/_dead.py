"""Dead letters on RabbitMQ: ``<queue>.dead`` queues, read without taking, requeued by id.

Each function runs on the transport's I/O thread (inside a ``Link.call``) and takes the
connection it may open channels on. Reading uses ``basic.get`` without acknowledging on a
channel of its own, which is then closed, so RabbitMQ puts the messages back in order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve

from celeriac.plugin import DeadLetter
from celeriac.plugin import Envelope
from celeriac_amqp import _wire as wire

if TYPE_CHECKING:
    import pika


def dead_properties(envelope: Envelope, reason: str) -> pika.BasicProperties:
    """The dead copy's properties: the original's, plus the reason, the time and an id."""
    headers = {
        **envelope.headers,
        wire.REASON: reason,
        wire.FAILED_AT: time.time(),
        wire.DEAD_ID: uuid.uuid4().hex,
    }
    return wire.properties(evolve(envelope, headers=headers), 0)


def peek(connection: Any, queues: list[str], limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead letters of ``queues``, oldest first, left where they are."""
    import pika.exceptions as errors

    found: list[DeadLetter] = []
    channel = connection.channel()
    try:
        for queue in queues:
            try:
                while len(found) < limit:
                    method, props, body = channel.basic_get(queue + wire.DEAD_SUFFIX, auto_ack=False)
                    if method is None:
                        break
                    found.append(_dead_letter(queue, props, body))
            except errors.ChannelClosedByBroker:  # no such queue
                channel = connection.channel()
    finally:
        if channel.is_open:
            channel.close()
    return sorted(found, key=lambda dead: dead.failed_at)


def requeue(
    connection: Any, queue: str, wanted: str, publish: Callable[[bytes, pika.BasicProperties], None]
) -> bool:
    """Find the dead letter ``wanted`` of ``queue``, ``publish`` it back (without the dead
    letter's headers), then acknowledge the dead copy; False when it is not there."""
    import pika.exceptions as errors

    channel = connection.channel()
    try:
        while True:
            method, props, body = channel.basic_get(queue + wire.DEAD_SUFFIX, auto_ack=False)
            if method is None:
                return False
            if (props.headers or {}).get(wire.DEAD_ID) == wanted:
                publish(body, wire.properties(wire.envelope(props, body), 0))
                channel.basic_ack(method.delivery_tag)
                return True
    except errors.ChannelClosedByBroker:
        return False
    finally:
        if channel.is_open:
            channel.close()


def purge(channel: Any, queue: str) -> int:
    """Purge ``<queue>.dead`` on ``channel`` and count what was deleted (0 when it does not exist)."""
    import pika.exceptions as errors

    try:
        return int(channel.queue_purge(queue + wire.DEAD_SUFFIX).method.message_count)
    except errors.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:  # never dead-lettered anything: nothing to delete
            return 0
        raise


def _dead_letter(queue: str, props: pika.BasicProperties, body: bytes) -> DeadLetter:
    headers = props.headers or {}
    return DeadLetter(
        id=f"{queue}:{headers.get(wire.DEAD_ID, '')}",
        queue=queue,
        envelope=wire.envelope(props, body),
        reason=str(headers.get(wire.REASON, "")),
        failed_at=float(headers.get(wire.FAILED_AT) or 0.0),
    )
