"""Sends ``worker-heartbeat`` events so monitors know the worker is alive and how busy."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config
from celeriac._worker.events import software
from celeriac._worker.keys import CONSUMER
from celeriac._worker.keys import EVENTS
from celeriac._worker.keys import TIMER

HEARTBEAT_INTERVAL = 2.0


@frozen
class HeartbeatStep:
    name: ClassVar[str] = "kernel.heartbeat"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.timer", "kernel.events", "kernel.consumer"})

    def enabled(self, config: Config) -> bool:
        return config.worker.heartbeat

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        events = ctx.require(EVENTS)
        consumer = ctx.require(CONSUMER)
        if events.sinks:
            info = software()

            def beat() -> None:
                events.send(
                    "worker-heartbeat",
                    freq=HEARTBEAT_INTERVAL,
                    active=consumer.active_count,
                    processed=consumer.processed,
                    loadavg=list(os.getloadavg()),
                    **info,
                )

            ctx.require(TIMER).call_every(HEARTBEAT_INTERVAL, beat)
        yield
