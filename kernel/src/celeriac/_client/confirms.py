"""Publishes a broker confirms after ``publish()`` returned, and how the app sees them.

A transport may return from ``publish()`` before the broker confirmed the message (the
RabbitMQ transport's confirm window). Such a transport offers :class:`ConfirmedPublishing`:
``app.flush()`` waits for every confirm, and a result handle asks whether its message failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Protocol
from typing import runtime_checkable

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


@runtime_checkable
class ConfirmedPublishing(Protocol):
    """A transport whose ``publish()`` may return before the broker confirmed the message."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker confirmed every message published so far.

        Raises :class:`~celeriac._model.errors.PublishError` for messages it refused for good, and
        :class:`TimeoutError` when confirms are still missing after ``timeout`` seconds.
        """

    def publish_error(self, task_id: str) -> BaseException | None:
        """Why the message of ``task_id`` was not queued, if publishing it failed for good."""


def flush(app: Celeriac, timeout: float | None = None) -> None:
    """``app.flush()``: wait for the confirms of everything this app published."""
    transport = app._transport
    if isinstance(transport, ConfirmedPublishing):
        transport.flush(timeout)


def publish_error(app: Celeriac, task_id: str) -> BaseException | None:
    """The error that kept ``task_id``'s message from its queue, if this app knows one."""
    transport = app._transport
    return transport.publish_error(task_id) if isinstance(transport, ConfirmedPublishing) else None
