"""The ``prometheus.exporter`` bootstep: a worker serves its own metrics.

The metrics come from the worker's events (see ``_metrics``), which its main process sends
whatever the pool, so tasks run by prefork children are counted too. That is why the step
refuses to start when the worker sends no events: it would serve zeros.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac.plugin import EVENTS
from celeriac.plugin import TIMER
from celeriac.plugin import TRANSPORT
from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import StepContext
from celeriac_prometheus._config import SECTION
from celeriac_prometheus._config import PrometheusConfig
from celeriac_prometheus._queues import QueueSampler
from celeriac_prometheus._server import serving
from celeriac_prometheus._sink import MetricsSink

log = logging.getLogger("celeriac.prometheus")


@frozen
class ExporterStep:
    """Serves ``/metrics`` on ``[prometheus] worker_port`` while the worker runs."""

    name: ClassVar[str] = "prometheus.exporter"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection", "kernel.events", "kernel.timer"})

    def enabled(self, config: Config) -> bool:
        return config.section(SECTION, PrometheusConfig).worker_port is not None

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        settings = ctx.config.section(SECTION, PrometheusConfig)
        assert settings.worker_port is not None  # enabled() checked it
        dispatcher = ctx.require(EVENTS)
        if not dispatcher.enabled:
            raise ConfigError(
                f"[prometheus] worker_port = {settings.worker_port} needs the worker's events, which are "
                "off: start the worker with -E or set [worker] send_events = true "
                "(or unset worker_port and run `celeriac prometheus` instead)"
            )
        sink = next((sink for sink in dispatcher.sinks if isinstance(sink, MetricsSink)), None)
        if sink is None:
            raise ConfigError(
                "[prometheus] worker_port is set but the prometheus plugin's event sink is missing"
            )
        metrics = sink.metrics
        metrics.worker_online(ctx.hostname)
        queues = settings.queues or tuple(ctx.config.worker.queues) or (ctx.config.default_queue,)
        sampler = QueueSampler(ctx.require(TRANSPORT), queues, metrics)
        stopped = threading.Event()

        def sample() -> None:
            if not stopped.is_set():  # the timer cannot unschedule; it outlives this step
                sampler.sample()

        with serving(
            metrics.registry, settings.address, settings.worker_port, setting="[prometheus] worker_port"
        ):
            log.info(
                "serving Prometheus metrics on http://%s:%d/metrics", settings.address, settings.worker_port
            )
            sampler.sample()
            ctx.require(TIMER).call_every(settings.queue_interval, sample)
            try:
                yield
            finally:
                stopped.set()
