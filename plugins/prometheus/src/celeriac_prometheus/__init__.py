"""celeriac-prometheus: Prometheus metrics for celeriac workers and queues.

Two exporters share one set of metrics built from the workers' events: the
``prometheus.exporter`` bootstep serves a worker's own metrics on ``[prometheus]
worker_port``, and ``celeriac prometheus`` serves the whole cluster's from the broker's
event stream. Importing this module starts, opens and registers nothing.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac_prometheus._config import DEFAULT_BUCKETS
from celeriac_prometheus._config import DEFAULT_PORT
from celeriac_prometheus._config import SECTION
from celeriac_prometheus._config import PrometheusConfig
from celeriac_prometheus._hooks import celeriac_add_bootsteps
from celeriac_prometheus._hooks import celeriac_add_cli_commands
from celeriac_prometheus._hooks import celeriac_add_config_sections
from celeriac_prometheus._hooks import celeriac_add_event_sinks
from celeriac_prometheus._metrics import TASK_STATES
from celeriac_prometheus._metrics import TaskMetrics
from celeriac_prometheus._queues import QueueSampler
from celeriac_prometheus._server import serving
from celeriac_prometheus._sink import MetricsSink
from celeriac_prometheus._step import ExporterStep

try:
    __version__ = _version("celeriac-prometheus")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_PORT",
    "SECTION",
    "TASK_STATES",
    "ExporterStep",
    "MetricsSink",
    "PrometheusConfig",
    "QueueSampler",
    "TaskMetrics",
    "__version__",
    "celeriac_add_bootsteps",
    "celeriac_add_cli_commands",
    "celeriac_add_config_sections",
    "celeriac_add_event_sinks",
    "serving",
]
