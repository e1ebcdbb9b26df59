"""Monitoring events, shaped like Celery's, sent to every sink plugins provide.

With no sink installed (or ``worker.send_events = false``) ``enabled`` is false and the
consumer skips building events altogether.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import time
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._contract.protocols import EventSink
from celeriac._model import states
from celeriac._model.config import Config
from celeriac._model.message import TaskMessage
from celeriac._model.outcome import Outcome
from celeriac._model.version import __version__
from celeriac._worker.keys import EVENTS

log = logging.getLogger("celeriac.worker.events")


class EventDispatcher:
    """Stamps events with host, pid, time and a Lamport clock, and fans them out to sinks."""

    def __init__(self, sinks: Sequence[EventSink], hostname: str, *, enabled: bool = True) -> None:
        self.sinks = tuple(sinks)
        #: Checked on the hot path; remote control turns it on and off (when sinks exist).
        self.enabled = enabled and bool(self.sinks)
        self.hostname = hostname
        self._clock = itertools.count(1)
        self._pid = os.getpid()
        self._utcoffset = -time.timezone // 3600

    def send(self, type_: str, **fields: Any) -> None:
        if not self.enabled:
            return
        event = {
            "type": type_,
            "timestamp": time.time(),
            "hostname": self.hostname,
            "utcoffset": self._utcoffset,
            "pid": self._pid,
            "clock": next(self._clock),
            **fields,
        }
        for sink in self.sinks:
            try:
                sink.send(event)
            except Exception:
                # A monitoring failure must never stop task processing.
                log.exception("event sink %r failed on %s", sink, type_)

    def task_received(self, message: TaskMessage, queue: str) -> None:
        """``task-received``, with Celery's fields (and the queue, which Celery's lacks)."""
        self.send(
            "task-received",
            uuid=message.id,
            name=message.task,
            args=message.argsrepr,
            kwargs=message.kwargsrepr,
            retries=message.retries,
            root_id=message.root_id,
            parent_id=message.parent_id,
            eta=message.eta.isoformat() if message.eta else None,
            expires=message.expires.isoformat() if message.expires else None,
            # Not in Celery's task-received; monitors label per-queue metrics with it.
            queue=queue,
        )

    def task_finished(self, outcome: Outcome) -> None:
        """The event of how a task ended: succeeded, retried, revoked or failed."""
        uuid = outcome.request.id
        if outcome.state == states.SUCCESS:
            self.send("task-succeeded", uuid=uuid, result=outcome.result, runtime=outcome.runtime)
        elif outcome.state == states.RETRY:
            self.send("task-retried", uuid=uuid, exception=outcome.reason, traceback=outcome.traceback)
        elif outcome.state == states.REVOKED:
            self.send("task-revoked", uuid=uuid, terminated=False, signum=None, expired=False)
        else:
            self.send("task-failed", uuid=uuid, exception=outcome.reason, traceback=outcome.traceback)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


@frozen
class EventsStep:
    name: ClassVar[str] = "kernel.events"
    requires: ClassVar[frozenset[str]] = frozenset()

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        # Sinks are built even with events off, so remote control can turn them on later.
        sinks = ctx.app.plugins.event_sinks(ctx.config, ctx.app)
        dispatcher = EventDispatcher(sinks, ctx.hostname, enabled=ctx.config.worker.send_events)
        ctx.provide(EVENTS, dispatcher)
        dispatcher.send("worker-online", **software())
        try:
            yield
        finally:
            dispatcher.send("worker-offline", **software())
            dispatcher.close()


def software() -> dict[str, str]:
    """Celery's ``sw_ident``/``sw_ver``/``sw_sys`` fields of worker events (monitors show them)."""
    return {"sw_ident": "celeriac", "sw_ver": __version__, "sw_sys": platform.system()}
