"""``task-sent`` events from the clients that publish tasks (Celery's ``task_send_sent_event``).

With ``[events] task_send_sent_event = true`` every app (a producer, and a worker that
publishes follow-up tasks) sends a ``task-sent`` event for each task message it publishes,
with Celery's fields. ``record`` runs in the publishing thread after the transport took
the message: it builds a small dict and appends it to a bounded buffer, never waiting on
the broker; the buffer's own thread broadcasts the events in batches on ``celeryev``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import weakref
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import Broadcaster
from celeriac.plugin import Envelope
from celeriac.plugin import Subscription
from celeriac.plugin import after_fork
from celeriac_events._config import EventsConfig
from celeriac_events._sinks import BrokerSink

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac.plugin import TaskMessage

log = logging.getLogger("celeriac.events")
#: The name the per-app publisher is registered under in the app's plugin manager.
PLUGIN_NAME = "events.task_sent"


@final
class _AppBroadcaster:
    """The app's transport, looked up at each flush: it may be closed and reopened meanwhile."""

    def __init__(self, app: Celeriac) -> None:
        self._app = weakref.ref(app)
        self._warned = False

    def _app_alive(self) -> Celeriac:
        app = self._app()
        if app is None:
            raise RuntimeError("the app that sent these tasks is gone")
        return app

    def subscribe(self, channel: str) -> Subscription:
        transport = self._app_alive().transport
        if not isinstance(transport, Broadcaster):
            raise TypeError(f"{transport!r} has no broadcast channel")
        return transport.subscribe(channel)

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        app = self._app_alive()
        transport = app.transport
        if not isinstance(transport, Broadcaster):
            if not self._warned:
                self._warned = True
                log.warning(
                    "task_send_sent_event: the broker %s has no broadcast channel; "
                    "task-sent events are dropped",
                    app.config.broker,
                )
            return
        transport.broadcast(channel, envelope)


@final
class SentEvents:
    """Builds ``task-sent`` events for one app and hands them to a broker sink of its own.

    :param app: the publishing app; its ``origin`` (``gen<pid>@<host>``) is the events'
        ``hostname``, as Celery's clients name themselves.
    """

    def __init__(self, app: Celeriac, settings: EventsConfig) -> None:
        self._app = weakref.ref(app)
        self._settings = settings
        self._utcoffset = -time.timezone // 3600
        self._start()
        # A forked child inherits the buffer but not its thread: it starts afresh.
        after_fork(self, SentEvents._start)
        # Flushes what is left when the app is collected or the interpreter exits.
        weakref.finalize(app, self.close)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._clock = itertools.count(1)
        app = self._app()
        self._hostname = app.origin if app is not None else f"gen{self._pid}"
        self.sink = self._new_sink()

    def _new_sink(self) -> BrokerSink:
        app = self._app()
        return BrokerSink(
            _AppBroadcaster(app) if app is not None else None,
            interval=self._settings.batch_interval,
            max_buffer=self._settings.max_buffer,
        )

    def record(self, message: TaskMessage, queue: str) -> None:
        """Buffer the ``task-sent`` event of a message just handed to the transport."""
        self.sink.send(
            {
                "type": "task-sent",
                "timestamp": time.time(),
                "hostname": self._hostname,
                "utcoffset": self._utcoffset,
                "pid": self._pid,
                "clock": next(self._clock),
                "uuid": message.id,
                "root_id": message.root_id,
                "parent_id": message.parent_id,
                "name": message.task,
                "args": message.argsrepr if message.argsrepr is not None else repr(message.args),
                "kwargs": message.kwargsrepr
                if message.kwargsrepr is not None
                else repr(dict(message.kwargs)),
                "retries": message.retries,
                "eta": message.eta.isoformat() if message.eta else None,
                "expires": message.expires.isoformat() if message.expires else None,
                # Celery publishes through the default exchange, routed by the queue's name.
                "queue": queue,
                "exchange": "",
                "routing_key": queue,
            }
        )

    def flush(self) -> int:
        """Broadcast what is buffered now; returns how many events went."""
        return self.sink.flush()

    def close(self) -> None:
        """Broadcast what is left and stop the flushing thread."""
        self.sink.close()

    def restart(self) -> None:
        """The app is closing: broadcast what is left, stop the flushing thread, and take a
        fresh sink, whose thread starts only if the app publishes again."""
        self.close()
        self.sink = self._new_sink()


def _or_repr(given: str | None, value: Any) -> str:
    """The repr the message header carries (what workers report in ``task-received``)."""
    return given if given is not None else repr(value)
