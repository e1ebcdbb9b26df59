"""A real worker serving its own /metrics, scraped over HTTP: threads in-process, prefork as a process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import TaskCall
from celeriac.testing import WorkerProcess
from celeriac.testing import worker_thread

from .conftest import eventually
from .conftest import free_port
from .conftest import value
from .conftest import write_project

HOST = "prom@test"


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Celeriac]]:
    apps: list[Celeriac] = []

    def factory(**prometheus: Any) -> Celeriac:
        url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
        app = Celeriac("tests", broker=url, env={}, config=False, prometheus=prometheus)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


def expected_counts(text: str, **labels: str) -> bool:
    """What test_* send: 3 adds, 1 failure, 1 task retried once, 2 messages in 'backlog'."""
    add = {"name": "proj.add", "queue": "celery", **labels}
    flaky = {"name": "proj.flaky", "queue": "celery", **labels}
    return (
        value(text, "celeriac_tasks_total", state="SUCCESS", **add) == 3
        and value(text, "celeriac_tasks_total", state="RECEIVED", **add) == 3
        and value(text, "celeriac_task_runtime_seconds_count", **add) == 3
        and value(text, "celeriac_tasks_total", state="FAILURE", name="proj.boom", **labels) == 1
        and value(text, "celeriac_tasks_total", state="RETRY", **flaky) == 1
        and value(text, "celeriac_tasks_total", state="RECEIVED", **flaky) == 2
        and value(text, "celeriac_tasks_total", state="SUCCESS", **flaky) == 1
        and value(text, "celeriac_queue_length", queue="backlog") == 2
        and value(text, "celeriac_worker_up", **labels) == 1
    )


def test_worker_serves_its_metrics(make_app: Callable[..., Celeriac]) -> None:
    port = free_port()
    app = make_app(worker_port=port, queues=["celery", "backlog"], queue_interval=0.1)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="proj.flaky", bind=True, max_retries=3)
    def flaky(call: TaskCall) -> str:
        if call.request.retries < 1:
            call.retry(countdown=0)
        return "ok"

    with worker_thread(app, concurrency=2, send_events=True, hostname=HOST):
        results = [add.delay(n, n) for n in range(3)]
        failed, retried = boom.delay(), flaky.delay()
        app.send_task("proj.add", (1, 1), queue="backlog")
        app.send_task("proj.add", (2, 2), queue="backlog")
        assert [r.get(timeout=10) for r in results] == [0, 2, 4]
        assert retried.get(timeout=10) == "ok"
        with pytest.raises(ValueError):
            failed.get(timeout=10)
        text = eventually(port, lambda t: expected_counts(t, hostname=HOST))
    assert value(text, "celeriac_task_runtime_seconds_sum", name="proj.add", hostname=HOST) is not None
    assert value(text, "celeriac_task_runtime_seconds_bucket", name="proj.add", le="+Inf") == 3
    # The worker stopped: so did its server, and the port is free for the next one.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_worker_without_events_refuses_to_start(make_app: Callable[..., Celeriac]) -> None:
    port = free_port()
    app = make_app(worker_port=port)
    with pytest.raises(ConfigError, match=r"needs the worker's events.*-E"):
        app.worker(send_events=False, poll_timeout=0.1).run()


def test_worker_port_in_use_is_a_clear_error(make_app: Callable[..., Celeriac]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = make_app(worker_port=port)
        with pytest.raises(ConfigError, match=rf"127.0.0.1:{port}: port {port} is already in use"):
            app.worker(send_events=True, poll_timeout=0.1).run()
    assert not [t for t in threading.enumerate() if t.name == "celeriac-consumer"]


@pytest.mark.slow
def test_prefork_worker_counts_tasks_run_in_children(
    tmp_path: Path, start_process: Callable[..., WorkerProcess], load_project: Callable[[], Any]
) -> None:
    port = free_port()
    write_project(
        tmp_path,
        f"""
        [prometheus]
        worker_port = {port}
        queues = ["celery", "backlog"]
        queue_interval = 0.2
        """,
    )
    worker = start_process("worker", "-E", "-P", "prefork", "-c", "2", "-n", HOST)
    proj = load_project()
    results = [proj.add.delay(n, n) for n in range(3)]
    failed, retried = proj.boom.delay(), proj.flaky.delay()
    proj.app.send_task("proj.add", (1, 1), queue="backlog")
    proj.app.send_task("proj.add", (2, 2), queue="backlog")
    assert [r.get(timeout=20) for r in results] == [0, 2, 4]
    assert retried.get(timeout=20) == "ok"
    with pytest.raises(ValueError):
        failed.get(timeout=20)
    eventually(port, lambda t: expected_counts(t, hostname=HOST))
    assert "serving Prometheus metrics on http://127.0.0.1:" in worker.output()
