"""The hook implementations: the ``[prometheus]`` section, the sink, the bootstep and the command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import EventSink
from celeriac.plugin import hookimpl
from celeriac_prometheus._config import SECTION
from celeriac_prometheus._config import PrometheusConfig
from celeriac_prometheus._metrics import TaskMetrics
from celeriac_prometheus._sink import MetricsSink
from celeriac_prometheus._step import ExporterStep

if TYPE_CHECKING:
    import click

    from celeriac.plugin import Bootstep


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=PrometheusConfig, description="Prometheus metrics")]


@hookimpl
def celeriac_add_event_sinks(config: Config) -> Sequence[EventSink]:
    # Built at every worker start, so each run counts from zero, as Prometheus expects of a
    # new process; nothing unless this worker serves metrics.
    settings = config.section(SECTION, PrometheusConfig)
    if settings.worker_port is None:
        return []
    return [MetricsSink(TaskMetrics(buckets=settings.buckets, max_label_values=settings.max_label_values))]


@hookimpl
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
    # Always contributed; ExporterStep.enabled reads [prometheus] worker_port.
    return [ExporterStep()]


@hookimpl
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    from celeriac_prometheus._cli import prometheus_command

    return [prometheus_command]
