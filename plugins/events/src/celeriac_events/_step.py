"""The ``events.broker`` bootstep: gives the broker sink the worker's transport.

``celeriac_add_event_sinks`` receives only the configuration, so the broker sink it builds
has no transport yet. This step runs after ``kernel.connection`` and ``kernel.events``,
finds the unbound broker sinks among the dispatcher's sinks and binds the transport.
Events sent before that (``worker-online``) wait in the sink's buffer; the binding is
never undone, so ``worker-offline``, sent when ``kernel.events`` stops after this step,
is still broadcast when the dispatcher closes the sink.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac.plugin import EVENTS
from celeriac.plugin import TRANSPORT
from celeriac.plugin import Broadcaster
from celeriac.plugin import Config
from celeriac.plugin import StepContext
from celeriac_events._config import SECTION
from celeriac_events._config import EventsConfig
from celeriac_events._sinks import BrokerSink

log = logging.getLogger("celeriac.events")


@frozen
class BrokerSinkStep:
    """Binds the worker's transport to the broker sink (when ``[events] sinks`` has ``broker``)."""

    name: ClassVar[str] = "events.broker"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection", "kernel.events"})

    def enabled(self, config: Config) -> bool:
        # Not tied to worker.send_events: remote control may turn events on later.
        return "broker" in config.section(SECTION, EventsConfig).sinks

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        transport = ctx.require(TRANSPORT)
        sinks = [
            sink for sink in ctx.require(EVENTS).sinks if isinstance(sink, BrokerSink) and not sink.bound
        ]
        if isinstance(transport, Broadcaster):
            for sink in sinks:
                sink.bind(transport)
        elif sinks:
            log.warning(
                "the broker %s has no broadcast channel: the events broker sink sends nothing "
                '(use [events] sinks = ["jsonl"] or ["log"] with this broker)',
                ctx.config.broker,
            )
            for sink in sinks:
                sink.discard()
        yield
