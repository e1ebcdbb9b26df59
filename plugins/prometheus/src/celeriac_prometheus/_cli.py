"""``celeriac prometheus``: one exporter for the whole cluster, fed by the broker's events."""

from __future__ import annotations

import time
from typing import Any

import click

from celeriac.plugin import Broadcaster
from celeriac.plugin import CeleriacError
from celeriac_prometheus._config import SECTION
from celeriac_prometheus._config import PrometheusConfig
from celeriac_prometheus._metrics import TaskMetrics
from celeriac_prometheus._queues import QueueSampler
from celeriac_prometheus._server import serving

#: Longest wait for events before worker liveness and the queue schedule are checked.
_POLL = 0.5


@click.command("prometheus")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to serve /metrics on (default: [prometheus] port, 9808).",
)
@click.option("--address", help="Address to bind (default: [prometheus] address, 127.0.0.1).")
@click.option(
    "--duration", type=click.FloatRange(min=0), help="Stop after this many seconds (default: Ctrl-C)."
)
@click.pass_context
def prometheus_command(
    ctx: click.Context, port: int | None, address: str | None, duration: float | None
) -> None:
    """Serve Prometheus metrics for every worker, from their events (workers need -E)."""
    from celeriac.plugin import load_app
    from celeriac_events import EVENT_CHANNEL
    from celeriac_events import subscribe_events

    root: dict[str, Any] = ctx.find_root().obj or {}
    app = load_app(root.get("app"), root.get("config"))
    settings = app.config.section(SECTION, PrometheusConfig)
    port = port or settings.port
    address = address or settings.address
    setting = "--port or [prometheus] port"
    deadline = None if duration is None else time.monotonic() + duration
    try:
        transport = app.transport
        if not isinstance(transport, Broadcaster):
            scheme = app.config.broker.partition(":")[0]
            raise CeleriacError(
                f"the {scheme} broker has no broadcast channel, so it carries no events; "
                "serve metrics from each worker instead ([prometheus] worker_port)"
            )
        metrics = TaskMetrics(buckets=settings.buckets, max_label_values=settings.max_label_values)
        sampler = QueueSampler(transport, settings.queues or (app.config.default_queue,), metrics)
        with (
            subscribe_events(transport, app.codec) as receiver,
            serving(metrics.registry, address, port, setting=setting),
        ):
            click.echo(
                f"serving metrics on http://{address}:{port}/metrics from {EVENT_CHANNEL} events", err=True
            )
            next_sample = time.monotonic()
            while deadline is None or time.monotonic() < deadline:
                if time.monotonic() >= next_sample:
                    sampler.sample()
                    next_sample = time.monotonic() + settings.queue_interval
                wait = min(_POLL, max(0.0, next_sample - time.monotonic()))
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                events = receiver.get(wait)
                now = time.time()
                for event in events:
                    metrics.apply(event, now=now)
                metrics.refresh_workers(now)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
