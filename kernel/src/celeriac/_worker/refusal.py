"""What becomes of a message that will not run: one that cannot be processed is
dead-lettered with the reason (and recorded as FAILURE when it has a task id); one revoked
or expired is recorded REVOKED, counted in its chord, and acknowledged. Never dropped,
never a dead worker."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Container
from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.canvas_wire import from_dict
from celeriac._client.workflow import part_done
from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import Transport
from celeriac._model import states
from celeriac._model.errors import CeleriacError
from celeriac._model.errors import MessageError
from celeriac._model.errors import NotRegisteredError
from celeriac._model.message import TaskMessage
from celeriac._model.records import Delivery
from celeriac._model.request import TaskRequest
from celeriac._worker.events import EventDispatcher
from celeriac._worker.starts import StartCounts

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task

log = logging.getLogger("celeriac.worker")


class UnprocessableMessageError(MessageError):
    """Recorded as a task's FAILURE when its message could not be processed."""


class Refusals:
    """Dead-letters, and skips revoked or expired messages, for one consumer."""

    def __init__(
        self, app: Celeriac, transport: Transport, events: EventDispatcher, *, hostname: str
    ) -> None:
        self.app = app
        self.transport = transport
        self.events = events
        self.hostname = hostname
        self._store: ResultStore | None = app.result_store if app.result_store_url is not None else None
        self.starts = StartCounts(transport, self._store)

    def screen(
        self, delivery: Delivery, max_deliveries: int, revoked: Container[str]
    ) -> tuple[TaskMessage, Task[Any, Any], dt.datetime, bool] | None:
        """The message of a delivery that may run, its task and the time it was judged at;
        None when it was refused (it cannot be decoded, was delivered more than
        ``max_deliveries`` times, names no registered task) or skipped (revoked, expired).
        The last item says whether a recorded start of its task did not finish (see .starts)."""
        try:
            message = self.app.codec.decode_task(delivery.envelope)
        except MessageError as exc:
            self.refuse(delivery, f"cannot decode message: {exc}", delivery.envelope.headers.get("id"))
            return None
        suspect = False
        if self.starts.counted:
            prior = self.starts.before(delivery, message)
            suspect = prior.suspect
            if prior.count >= max_deliveries:
                self.refuse(
                    delivery,
                    f"started {prior.count} times without finishing (worker.max_deliveries = "
                    f"{max_deliveries}); it may be killing its worker",
                    message.id,
                )
                return None
        elif delivery.delivery_count > max_deliveries:
            self.refuse(
                delivery,
                f"delivered {delivery.delivery_count} times without being acknowledged "
                f"(worker.max_deliveries = {max_deliveries}); it may be killing its worker",
                message.id,
            )
            return None
        task = self.app.tasks.get(message.task)
        if task is None:
            reason = (
                f"received unregistered task {message.task!r}: no such task in this worker "
                "(is its module in 'imports', or the worker started with the right -A?)"
            )
            self.app.plugins.lifecycle.task_unknown(message, reason)
            self.refuse(delivery, reason, message.id, NotRegisteredError(reason), rejected=False)
            return None
        if message.id in revoked:
            self.skip_revoked(delivery, message, "revoked", expired=False)
            return None
        now = dt.datetime.now(dt.UTC)
        if message.expires is not None and message.expires <= now:
            self.skip_revoked(delivery, message, f"expired at {message.expires.isoformat()}", expired=True)
            return None
        return message, task, now, suspect

    def refuse(
        self,
        delivery: Delivery,
        reason: str,
        task_id: Any,
        exc: CeleriacError | None = None,
        *,
        rejected: bool = True,
    ) -> None:
        """Dead-letter a message with ``reason``; FAILURE is recorded when it has a task id.
        ``rejected``: fire ``task_rejected`` (an unknown task fired ``task_unknown`` instead)."""
        if rejected:
            self.app.plugins.lifecycle.task_rejected(delivery, reason)
        log.error("dead-lettering message %s from %r: %s", task_id or "?", delivery.queue, reason)
        if self.events.enabled and isinstance(task_id, str):
            self.events.send("task-rejected", uuid=task_id, requeue=False, reason=reason)
        if isinstance(task_id, str) and task_id and self._store is not None:
            self._store_state(task_id, states.FAILURE, exc or UnprocessableMessageError(reason))
        self.transport.dead_letter(delivery, reason)

    def skip_revoked(self, delivery: Delivery, message: TaskMessage, reason: str, *, expired: bool) -> None:
        """Record a revoked (or expired) message REVOKED, without running it, and acknowledge it."""
        log.info("Task %s[%s] %s; not run", message.task, message.id, reason)
        if self._store is not None:
            self._store_state(message.id, states.REVOKED, reason, message.reply_to)
        request = TaskRequest(message=message, queue=delivery.queue, hostname=self.hostname)
        self.app.plugins.lifecycle.task_revoked(request, reason, {"expired": expired})
        if self.events.enabled:
            self.events.send("task-revoked", uuid=message.id, terminated=False, signum=None, expired=expired)
        if message.embed.chord and message.group and self._store is not None:
            # A revoked header task still counts, so its chord fails instead of waiting forever.
            body = from_dict(message.embed.chord, self.app)
            part_done(self.app, message.group, message.id, body, message.group_index)
        self.transport.ack([delivery])

    def _store_state(self, task_id: str, state: str, value: Any, reply_to: str | None = None) -> None:
        assert self._store is not None
        try:
            self._store.store(self.app.results.encode(task_id, state, value, reply_to=reply_to))
        except Exception:
            log.exception("could not record %s for task %s", state, task_id)
