"""The records of the data path: a message as a transport carries it, a delivery, a dead
letter, a stored result. Plain values, shared by the kernel and every plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field
from attrs import frozen


@frozen(kw_only=True)
class Envelope:
    """One message as a transport carries it: an opaque body plus metadata.

    ``headers`` and ``properties`` follow Celery's protocol 2 naming so that any transport
    can map them onto its broker's native fields (AMQP headers and properties, the kombu
    JSON envelope on Redis, columns in SQLite).
    """

    body: bytes
    content_type: str
    content_encoding: str = "utf-8"
    headers: Mapping[str, Any] = field(factory=dict)
    properties: Mapping[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class Delivery:
    """A message handed to a consumer and not yet acknowledged.

    :param tag: transport-specific handle used to ack, reject or extend the lease.
    :param delivery_count: how many times the message has been delivered, this time included;
        the worker dead-letters a message delivered more than ``worker.max_deliveries`` times.
    """

    envelope: Envelope
    queue: str
    tag: Any
    delivery_count: int = 1

    @property
    def redelivered(self) -> bool:
        return self.delivery_count > 1


@frozen(kw_only=True)
class DeadLetter:
    """A message that could not be processed, kept with the reason so it can be inspected."""

    id: str
    queue: str
    envelope: Envelope
    reason: str
    failed_at: float


@frozen(kw_only=True)
class ResultRecord:
    """A task's stored state.

    ``payload`` is the result meta (``status``, ``result``, ``traceback``, ``children``,
    ``date_done``, ``task_id``) encoded by the result serializer, which is exactly what
    Celery's key-value backends store, so stores can stay byte-for-byte compatible.
    """

    task_id: str
    state: str
    payload: bytes
    content_type: str
    content_encoding: str = "utf-8"
    #: The ``reply_to`` of the task's message (the sending client's queue), for stores that
    #: send results back to the client (:class:`ReplyQueue`); other stores ignore it.
    reply_to: str | None = None
