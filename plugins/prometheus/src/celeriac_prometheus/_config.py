"""The ``[prometheus]`` configuration section."""

from __future__ import annotations

import itertools
import math

from attrs import field
from attrs import frozen
from attrs import validators

#: The plugin's TOML table, named after its entry point.
SECTION = "prometheus"
#: Prometheus' default buckets, extended to an hour: tasks run longer than web requests.
DEFAULT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
#: The port celery-exporter uses, so dashboards and firewall rules carry over.
DEFAULT_PORT = 9808


def _port(_: object, attribute: object, value: int | None) -> None:
    if value is not None and not 1 <= value <= 65535:
        raise ValueError(f"port {value} is not between 1 and 65535")


def _buckets(_: object, __: object, value: tuple[float, ...]) -> None:
    if not value:
        raise ValueError("buckets is empty: give at least one upper bound, in seconds")
    if any(not math.isfinite(bound) or bound <= 0 for bound in value):
        raise ValueError(f"buckets must be positive, finite numbers of seconds, not {list(value)}")
    if any(a >= b for a, b in itertools.pairwise(value)):
        raise ValueError(f"buckets must be strictly increasing, not {list(value)}")


@frozen(kw_only=True)
class PrometheusConfig:
    """``[prometheus]``: where metrics are served and what they cover.

    :param worker_port: serve ``/metrics`` from every worker on this port (workers need
        events on, ``-E``); unset, workers serve nothing.
    :param port: the port ``celeriac prometheus`` (the cluster exporter) serves on.
    :param address: the address both bind to; loopback by default, so exposing metrics to
        the network is a decision.
    :param buckets: upper bounds, in seconds, of the runtime histogram's buckets.
    :param queues: queues whose length is sampled; empty: the worker's own queues (in a
        worker) or the default queue (``celeriac prometheus``).
    :param queue_interval: seconds between two samples of the queue lengths.
    :param max_label_values: distinct values kept per label (task name, queue, worker);
        further ones are counted under ``other``, so a flood of names cannot blow up the
        time series count.
    """

    worker_port: int | None = field(default=None, validator=_port)
    port: int = field(default=DEFAULT_PORT, validator=_port)
    address: str = field(default="127.0.0.1", validator=validators.min_len(1))
    buckets: tuple[float, ...] = field(default=DEFAULT_BUCKETS, validator=_buckets)
    queues: tuple[str, ...] = ()
    queue_interval: float = field(default=15.0, validator=validators.gt(0))
    max_label_values: int = field(default=1000, validator=validators.gt(0))
