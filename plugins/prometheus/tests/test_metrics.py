"""The fold from events to metrics, the [prometheus] section, and the plugin's wiring."""

from __future__ import annotations

import importlib.metadata
import logging
import socket
import threading
from typing import Any

import pluggy
import pytest
from prometheus_client import generate_latest

import celeriac.testing
import celeriac_prometheus
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac.plugin import hookspecs
from celeriac_prometheus import DEFAULT_BUCKETS
from celeriac_prometheus import TaskMetrics
from celeriac_prometheus import serving

from .conftest import free_port
from .conftest import scrape
from .conftest import value

HOST = "w1@host"


def ev(type_: str, hostname: str = HOST, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "hostname": hostname, "timestamp": 1000.0, **fields}


def text(metrics: TaskMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_counts_by_name_state_queue_and_worker() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    for uuid in ("a", "b"):
        metrics.apply(ev("task-received", uuid=uuid, name="proj.add", queue="math"))
        metrics.apply(ev("task-started", uuid=uuid))
    metrics.apply(ev("task-succeeded", uuid="a", runtime=0.02))
    metrics.apply(ev("task-failed", uuid="b", exception="ValueError: boom"))
    metrics.apply(ev("task-received", "w2@host", uuid="c", name="proj.add", queue="celery"))
    metrics.apply(ev("task-retried", "w2@host", uuid="c", exception="Retry"))
    out = text(metrics)

    math = {"name": "proj.add", "queue": "math", "hostname": HOST}
    assert value(out, "celeriac_tasks_total", state="RECEIVED", **math) == 2
    assert value(out, "celeriac_tasks_total", state="STARTED", **math) == 2
    assert value(out, "celeriac_tasks_total", state="SUCCESS", **math) == 1
    assert value(out, "celeriac_tasks_total", state="FAILURE", **math) == 1
    assert value(out, "celeriac_tasks_total", state="RETRY", name="proj.add", queue="celery") == 1
    assert value(out, "celeriac_task_runtime_seconds_count", **math) == 1
    assert value(out, "celeriac_task_runtime_seconds_sum", **math) == pytest.approx(0.02)
    assert value(out, "celeriac_task_runtime_seconds_bucket", le="0.025", **math) == 1
    assert value(out, "celeriac_task_runtime_seconds_bucket", le="0.01", **math) == 0
    # Task events prove their worker alive.
    assert value(out, "celeriac_worker_up", hostname="w2@host") == 1


def test_events_of_a_retried_task_out_of_order_keep_its_name() -> None:
    # The retry's run may finish before the first run's task-retried is sent.
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    for type_ in ("task-received", "task-started", "task-received", "task-started"):
        metrics.apply(
            ev(type_, uuid="r", name="proj.flaky", queue="celery")
            if type_ == "task-received"
            else ev(type_, uuid="r")
        )
    metrics.apply(ev("task-succeeded", uuid="r", runtime=0.001))
    metrics.apply(ev("task-retried", uuid="r", exception="Retry"))
    out = text(metrics)
    assert value(out, "celeriac_tasks_total", state="RETRY", name="proj.flaky", queue="celery") == 1
    assert value(out, "celeriac_tasks_total", state="SUCCESS", name="proj.flaky", queue="celery") == 1
    assert value(out, "celeriac_tasks_total", name="unknown") is None


def test_outcome_of_a_task_never_seen_received_is_unknown() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    metrics.apply(ev("task-revoked", uuid="z", expired=True))
    metrics.apply(ev("task-rejected", uuid=None))
    out = text(metrics)
    assert value(out, "celeriac_tasks_total", state="REVOKED", name="unknown", queue="unknown") == 1
    assert value(out, "celeriac_tasks_total", state="REJECTED", name="unknown") == 1


def test_label_values_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS, max_label_values=2)
    for n in range(5):
        metrics.apply(ev("task-received", uuid=str(n), name=f"proj.t{n}", queue="celery"))
    out = text(metrics)
    assert value(out, "celeriac_tasks_total", name="proj.t1") == 1
    assert value(out, "celeriac_tasks_total", name="proj.t2") is None
    assert value(out, "celeriac_tasks_total", name="other") == 3
    assert "max_label_values" in caplog.text


def test_tracked_ids_are_bounded() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS, max_tracked=2)
    for uuid in "abc":
        metrics.apply(ev("task-received", uuid=uuid, name="proj.add", queue="celery"))
    for uuid in "abc":
        metrics.apply(ev("task-succeeded", uuid=uuid, runtime=0.1))
    out = text(metrics)
    assert value(out, "celeriac_tasks_total", state="SUCCESS", name="proj.add") == 2
    assert value(out, "celeriac_tasks_total", state="SUCCESS", name="unknown") == 1


def test_worker_liveness_from_heartbeats() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    metrics.apply(ev("worker-online"), now=100.0)
    metrics.apply(ev("worker-heartbeat", freq=2.0, active=3), now=101.0)
    metrics.apply(ev("worker-online", "w2@host"), now=101.0)
    metrics.apply(ev("worker-offline", "w2@host"), now=102.0)
    metrics.apply(ev("task-sent", "client@host", uuid="s", name="proj.add", queue="celery"), now=102.0)
    metrics.refresh_workers(106.0)
    out = text(metrics)
    assert value(out, "celeriac_worker_up", hostname=HOST) == 1
    assert value(out, "celeriac_worker_tasks_active", hostname=HOST) == 3
    assert value(out, "celeriac_worker_up", hostname="w2@host") == 0
    assert value(out, "celeriac_worker_up", hostname="client@host") is None  # clients are no workers
    metrics.refresh_workers(107.5)  # more than three heartbeats (6 s) without a word
    assert value(text(metrics), "celeriac_worker_up", hostname=HOST) == 0
    metrics.refresh_workers(101.0 + 3601)
    assert value(text(metrics), "celeriac_worker_up", hostname=HOST) is None


def test_queue_length_unreadable_drops_the_series() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    metrics.set_queue_length("celery", 4)
    assert value(text(metrics), "celeriac_queue_length", queue="celery") == 4
    metrics.set_queue_length("celery", None)
    assert value(text(metrics), "celeriac_queue_length", queue="celery") is None


def test_concurrent_events_are_all_counted() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)

    def feed(worker: int) -> None:
        for n in range(500):
            uuid = f"{worker}-{n}"
            metrics.apply(ev("task-received", uuid=uuid, name="proj.add", queue="celery"))
            metrics.apply(ev("task-succeeded", uuid=uuid, runtime=0.001))

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    out = text(metrics)
    assert value(out, "celeriac_tasks_total", state="SUCCESS", name="proj.add") == 2000
    assert value(out, "celeriac_task_runtime_seconds_count", name="proj.add") == 2000


def test_serving_over_http_and_a_busy_port() -> None:
    metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
    metrics.set_queue_length("celery", 7)
    port = free_port()
    with serving(metrics.registry, "127.0.0.1", port, setting="[prometheus] worker_port"):
        assert value(scrape(port), "celeriac_queue_length", queue="celery") == 7
        busy = pytest.raises(ConfigError, match=rf"port {port} is already in use.*\[prometheus\] worker_port")
        with busy, serving(metrics.registry, "127.0.0.1", port, setting="[prometheus] worker_port"):
            pass
    # Stopped: nothing listens on the port any more (closed connections may linger in TIME_WAIT).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def _app(**prometheus: Any) -> Celeriac:
    return Celeriac(
        "t", broker="memory://", plugins=[celeriac.testing], env={}, config=False, prometheus=prometheus
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"worker_port": 0}, "between 1 and 65535"),
        ({"port": 70000}, "between 1 and 65535"),
        ({"buckets": [1.0, 0.5]}, "strictly increasing"),
        ({"buckets": []}, "buckets is empty"),
        ({"buckets": [-1.0]}, "positive"),
        ({"queue_interval": 0}, "queue_interval"),
        ({"max_label_values": 0}, "max_label_values"),
        ({"worker_port": "9808"}, "worker_port"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_configuration_is_an_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _app(**settings)


def test_section_defaults_and_values() -> None:
    app = _app(worker_port=9999, queues=["a", "b"], buckets=[0.1, 1])
    settings = app.config.section("prometheus", celeriac_prometheus.PrometheusConfig)
    assert (settings.worker_port, settings.port, settings.address) == (9999, 9808, "127.0.0.1")
    assert settings.queues == ("a", "b") and settings.buckets == (0.1, 1)
    app.close()


def test_entry_point_and_hooks() -> None:
    points = importlib.metadata.entry_points(group="celeriac.plugins")
    assert any(point.name == "prometheus" and point.value == "celeriac_prometheus" for point in points)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(celeriac_prometheus)
    pm.check_pending()


def test_no_sink_and_no_step_unless_worker_port_is_set() -> None:
    app = _app()
    sinks = app.plugins.event_sinks(app.config, app)
    assert not any(isinstance(sink, celeriac_prometheus.MetricsSink) for sink in sinks)
    assert "prometheus.exporter" not in app.worker().blueprint().steps
    app.close()


def test_import_starts_nothing() -> None:
    before = {thread.name for thread in threading.enumerate()}
    importlib.reload(celeriac_prometheus)
    assert {thread.name for thread in threading.enumerate()} == before
    assert not logging.getLogger("celeriac.prometheus").handlers
