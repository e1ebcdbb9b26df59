"""The one publish path: every message the app sends (``delay``, ``apply_async``,
``send_task``, a workflow, a retry, beat) is an :class:`Outgoing` handed to
:meth:`Publisher.publish`, which resolves where it goes, calls the publish hooks, encodes it
and hands it to the transport, batching what it can.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen

from celeriac._client.ids import TaskIds
from celeriac._model.errors import CeleriacError
from celeriac._model.errors import PublishError
from celeriac._model.message import Embed
from celeriac._model.message import TaskMessage
from celeriac._model.records import Envelope
from celeriac._model.redaction import redact_url
from celeriac._model.routing import TaskRoute
from celeriac._model.routing import resolve_exchange
from celeriac._model.routing import with_exchange
from celeriac._model.running import CURRENT

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task_options import TaskOptions


@frozen(kw_only=True)
class Outgoing:
    """One built message and where it goes.

    :param route: the call's queue, its :class:`TaskRoute` (a queue, or an exchange and
        routing key), or None for the task's own destination (options, routes, default).
    :param serializer: the body's serializer; None: the task's, else the app's default.
    :param delay_from_eta: let the transport hold a message with an ETA until then; False
        makes it visible at once (the worker then holds it until its ETA).
    """

    message: TaskMessage
    route: str | TaskRoute | None = None
    serializer: str | None = None
    delay_from_eta: bool = True


class Publisher:
    """Builds and publishes an app's task messages."""

    def __init__(self, app: Celeriac) -> None:
        self.app = app
        self.ids = TaskIds()

    def build(
        self,
        name: str,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        task_id: str | None = None,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        expires: float | dt.datetime | None = None,
        priority: int | None = None,
        headers: Mapping[str, Any] | None = None,
        ignore_result: bool | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
        embed: Embed | None = None,
        group: str | None = None,
        group_index: int | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        shadow: str | None = None,
        argsrepr: str | None = None,
        kwargsrepr: str | None = None,
    ) -> TaskMessage:
        """The protocol 2 message for a call: arguments checked, times made absolute (UTC).
        ``time_limit``/``soft_time_limit`` override the task's for this call; ``shadow`` is the
        name logs and events show instead of the task's; ``argsrepr``/``kwargsrepr`` what they
        show instead of the arguments (for secrets), as Celery's."""
        app = self.app
        task = app.tasks.get(name)
        options = app.options_for(name)
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        if task is not None:
            task.arguments.check(name, args, kwargs)
            args, kwargs = task.arguments.unstructure(args, kwargs)
        now = dt.datetime.now(dt.UTC)
        if countdown is not None:
            eta = now + dt.timedelta(seconds=countdown)
        elif eta is not None and eta.tzinfo is None:
            eta = eta.replace(tzinfo=dt.UTC)
        expires = expires if expires is not None else options.expires
        if isinstance(expires, int | float):
            expires = now + dt.timedelta(seconds=expires)
        elif isinstance(expires, dt.datetime) and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        task_id = task_id or self.ids.new()
        if parent_id is None and (run := CURRENT.get()) is not None:
            # Sent by a running task: its child, in the same tree (Celery's parent/root ids).
            parent_id = run.request.id
            root_id = root_id or run.request.message.root_id or run.request.id
            run.children.append(task_id)
        return TaskMessage(
            id=task_id,
            task=name,
            args=args,
            kwargs=kwargs,
            embed=embed or Embed(),
            eta=eta,
            expires=expires,
            group=group,
            group_index=group_index,
            timelimit=(
                time_limit if time_limit is not None else options.time_limit,
                soft_time_limit if soft_time_limit is not None else options.soft_time_limit,
            ),
            shadow=shadow,
            argsrepr=argsrepr,
            kwargsrepr=kwargsrepr,
            root_id=root_id or task_id,
            parent_id=parent_id,
            origin=app.origin,
            ignore_result=options.ignore_result if ignore_result is None else ignore_result,
            extra_headers=dict(headers or {}),
            priority=_first_set(priority, options.priority, app.config.default_priority),
            reply_to=app.reply_queue(),
        )

    def destination(self, name: str, route: str | TaskRoute | None) -> tuple[str, tuple[str, str] | None]:
        """Where a message of task ``name`` goes: the queue, and the exchange and routing key
        if any. Each of exchange and routing key is the route's, else the task's; a route
        naming only a queue goes to that queue. Brokers without exchanges use the queue."""
        return self._destination(self.app.options_for(name), route)

    def _destination(
        self, options: TaskOptions, route: str | TaskRoute | None
    ) -> tuple[str, tuple[str, str] | None]:
        if isinstance(route, TaskRoute):
            queue, exchange, routing_key = route.queue, route.exchange, route.routing_key
        else:
            queue, exchange, routing_key = route, None, None
        app = self.app
        if exchange is None and routing_key is None and (queue is not None or options.exchange is None):
            return queue or options.queue or app.config.default_queue, None
        target = resolve_exchange(
            queue=queue,
            exchange=exchange,
            routing_key=routing_key,
            task_exchange=options.exchange,
            task_routing_key=options.routing_key,
        )
        if target is not None and not target[0]:
            # The default exchange routes by queue name, on every broker.
            queue, target = target[1] or queue, None
        return queue or options.queue or app.config.default_queue, target

    def publish(self, outgoing: Iterable[Outgoing]) -> None:
        """Publish messages: those that need no delay and no exchange in one transport call
        per queue, priority and serializer (a group of a thousand tasks is one round trip),
        the others one by one, delayed by the transport until their ETA."""
        app = self.app
        lifecycle = app.plugins.lifecycle
        batches: dict[tuple[str, int, str | None], list[TaskMessage]] = {}
        for each in outgoing:
            message = each.message
            options = app.options_for(message.task)
            queue, exchange = self._destination(options, each.route)
            serializer = each.serializer or options.serializer
            delay = 0.0
            if each.delay_from_eta and message.eta is not None:
                delay = max(0.0, (message.eta - dt.datetime.now(dt.UTC)).total_seconds())
            if delay == 0.0 and exchange is None:
                batches.setdefault((queue, message.priority or 0, serializer), []).append(message)
                continue
            lifecycle.before_publish(message, queue, app)
            envelope = app.codec.encode_task(message, serializer)
            if exchange is not None:
                envelope = with_exchange(envelope, *exchange)
            _send(app, queue, [envelope], message.priority or 0, delay)
            lifecycle.after_publish(message, queue, app)
        for (queue, priority, serializer), messages in batches.items():
            for message in messages:
                lifecycle.before_publish(message, queue, app)
            envelopes = [app.codec.encode_task(message, serializer) for message in messages]
            _send(app, queue, envelopes, priority)
            for message in messages:
                lifecycle.after_publish(message, queue, app)


def _send(app: Celeriac, queue: str, envelopes: list[Envelope], priority: int, delay: float = 0.0) -> None:
    """``transport.publish``; a broker's own exception becomes a :class:`PublishError` naming
    the broker (password masked), so callers catch celeriac's errors only."""
    try:
        app.transport.publish(queue, envelopes, priority=priority, delay=delay)
    except CeleriacError:
        raise
    except Exception as exc:
        raise PublishError(
            f"could not publish to the broker {redact_url(app.config.broker)} "
            f"(queue {queue!r}): {type(exc).__name__}: {redact_url(str(exc))}"
        ) from exc


def _first_set(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)
