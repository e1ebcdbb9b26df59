"""The confirm window's records: a message until RabbitMQ acks it, and those it refused.

Both are guarded by the publisher's lock (:mod:`celeriac_amqp._publisher`).
"""

from __future__ import annotations

import logging

from celeriac.plugin import PublishError
from celeriac_amqp._frames import Content

log = logging.getLogger("celeriac.amqp")
#: How often a message RabbitMQ nacks is sent before it fails.
PUBLISH_ATTEMPTS = 3
#: Failed task ids remembered for ``publish_error`` (the oldest are forgotten first).
FAILURES_KEPT = 10_000


class Outgoing:
    """One message until RabbitMQ confirms it."""

    __slots__ = ("attempts", "content", "exchange", "method", "returned", "routing_key", "seq", "written")

    def __init__(self, seq: int, exchange: str, routing_key: str, method: bytes, content: Content) -> None:
        self.seq = seq
        self.exchange = exchange
        self.routing_key = routing_key
        self.method = method
        self.content = content
        self.attempts = 0
        self.returned = False
        #: Written to a connection at least once: it may have reached RabbitMQ unconfirmed.
        self.written = False

    @property
    def task_id(self) -> str | None:
        return self.content.task_id

    @property
    def name(self) -> str:
        """The task id, or the message's number when it is not a task's."""
        return self.content.task_id or f"#{self.seq}"


class Failures:
    """Messages given up on: each reported once to a caller, and kept by task id for its
    result handle."""

    def __init__(self) -> None:
        self._by_id: dict[str, PublishError] = {}
        self._unreported: list[Outgoing] = []

    def add(self, item: Outgoing) -> None:
        self._unreported.append(item)
        if item.task_id is not None:
            self._by_id[item.task_id] = PublishError(
                f"RabbitMQ refused task {item.task_id} {PUBLISH_ATTEMPTS} times (nack); it is not queued"
            )
            while len(self._by_id) > FAILURES_KEPT:
                del self._by_id[next(iter(self._by_id))]
        log.error("RabbitMQ refused message %s %d times (nack); giving up", item.name, item.attempts)

    def error(self, task_id: str) -> PublishError | None:
        return self._by_id.get(task_id)

    def raise_due(self, upto: int | None = None) -> None:
        """Raise one PublishError for the failures not reported yet, up to message ``upto``."""
        due = [item for item in self._unreported if upto is None or item.seq <= upto]
        if not due:
            return
        self._unreported = [item for item in self._unreported if item not in due]
        names = [item.name for item in due]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise PublishError(
            f"RabbitMQ refused {len(due)} message(s) after {PUBLISH_ATTEMPTS} attempts (nack): {shown}; "
            "they are not queued"
        )
