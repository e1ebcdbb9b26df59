"""Celery 5 with its default settings and celeriac share a queue whoever declares it first.

A stock Celery client or worker (no ``task_queue_max_priority``, no queue arguments) and a
celeriac client or worker each declare the task queue when they start using it; the first
declaration wins and any other that differs is refused by RabbitMQ (``406
PRECONDITION_FAILED``). celeriac declares what Celery declares, so both orders work; a queue
that exists with other arguments is used as it is, with one warning.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from celeriac import Celeriac
from celeriac_amqp.testing import connection_parameters

from .conftest import CELERY_PROJECT_BASE
from .conftest import REDIS_URL
from .conftest import WorkerProcess
from .conftest import celeriac_worker
from .conftest import load_celery_project

pytest.importorskip("celery")
pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def celery_app(
    project: Path, amqp_url: str, queue_name: str, result_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    app = load_celery_project(
        project,
        "celery_proj",
        CELERY_PROJECT_BASE,
        monkeypatch,
        INTEROP_URL=amqp_url,
        INTEROP_BACKEND=REDIS_URL,
        INTEROP_QUEUE=queue_name,
        INTEROP_PREFIX=result_prefix,
    )
    yield app
    app.close()


def celery_worker(queue: str) -> list[str]:
    return [
        *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
        *("-Q", queue, "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]


def test_celery_client_first_then_celeriac_worker(
    celery_app: Any, start_process: Callable[..., WorkerProcess]
) -> None:
    sent = celery_app.send_task("proj.add", (2, 3))  # kombu declares the queue, Celery's way
    worker = start_process(celeriac_worker("-c", "2"))
    assert sent.get(timeout=20) == 5
    assert celery_app.send_task("proj.add", (4, 4)).get(timeout=20) == 8
    assert "other arguments" not in worker.output()


def test_celeriac_client_first_then_celery_worker(
    celery_app: Any, client: Celeriac, queue_name: str, start_process: Callable[..., WorkerProcess]
) -> None:
    sent = client.send_task("proj.add", (2, 3))  # celeriac declares the queue
    client.flush()
    worker = start_process(celery_worker(queue_name), "ready.")
    assert sent.get(timeout=20) == 5
    assert client.send_task("proj.add", (1, 2)).get(timeout=20) == 3
    assert "PRECONDITION_FAILED" not in worker.output()


def test_a_queue_with_other_arguments_is_used_with_one_warning(
    client: Celeriac,
    amqp_url: str,
    queue_name: str,
    start_process: Callable[..., WorkerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    connection.channel().queue_declare(queue_name, durable=True, arguments={"x-max-priority": 10})
    connection.close()
    worker = start_process(celeriac_worker("-c", "2"))
    with caplog.at_level(logging.WARNING, logger="celeriac.amqp"):
        results = [client.send_task("proj.add", (n, n)) for n in range(20)]
        assert [r.get(timeout=20) for r in results] == [2 * n for n in range(20)]
    warnings = [r for r in caplog.records if "exists with other arguments" in r.getMessage()]
    assert len(warnings) == 1
    assert "x-max-priority" in warnings[0].getMessage()
    assert worker.output().count("exists with other arguments") == 1
