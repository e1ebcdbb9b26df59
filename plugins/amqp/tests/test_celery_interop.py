"""Celery 5 and celeriac on one RabbitMQ vhost, both directions, with the real ``celery`` package.

A Celery client sends to a celeriac worker process, and a celeriac client to a Celery worker
process: tasks with kwargs, a countdown, a failure with its traceback, a chain. Both publish
to the default exchange with the queue name as routing key, and the queue is declared alike
(Celery's defaults: durable, no arguments). Results go through Redis under Celery's keys. Needs ``celery``
(plugins/amqp/requirements-test.txt); skipped without it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import signature

from .conftest import CELERY_PROJECT_BASE
from .conftest import REDIS_URL
from .conftest import WorkerProcess
from .conftest import celeriac_worker
from .conftest import load_celery_project

pytest.importorskip("celery")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

CELERY_PROJECT = (
    CELERY_PROJECT_BASE
    + """
@app.task(name="proj.greet")
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"

@app.task(name="proj.fail")
def fail():
    raise ValueError("broken on purpose")
"""
)


@pytest.fixture
def celery_app(
    project: Path, amqp_url: str, queue_name: str, result_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    app = load_celery_project(
        project,
        "celery_proj",
        CELERY_PROJECT,
        monkeypatch,
        INTEROP_URL=amqp_url,
        INTEROP_BACKEND=REDIS_URL,
        INTEROP_QUEUE=queue_name,
        INTEROP_PREFIX=result_prefix,
    )
    yield app
    app.close()


def test_celery_client_to_celeriac_worker(
    celery_app: Any, start_process: Callable[..., WorkerProcess]
) -> None:
    worker = start_process(celeriac_worker("-c", "2"))
    assert celery_app.send_task("proj.add", (2, 3)).get(timeout=20) == 5
    greeting = celery_app.send_task("proj.greet", ("bob",), {"punctuation": "?"}, priority=3)
    assert greeting.get(timeout=20) == "hello bob?"
    sent = time.monotonic()
    later = celery_app.send_task("proj.add", (1, 1), countdown=2)
    assert later.get(timeout=20) == 2
    assert time.monotonic() - sent >= 1.9
    failed = celery_app.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.status == "FAILURE"
    assert "ValueError: broken on purpose" in failed.traceback
    from celery import chain as celery_chain

    last = celery_chain(
        celery_app.signature("proj.add", (2, 2)), celery_app.signature("proj.add", (4,))
    ).delay()
    assert last.get(timeout=20) == 8  # the chain travels in embed.chain and continues here
    assert last.parent.get(timeout=5) == 4
    assert worker.proc.poll() is None


def test_celeriac_client_to_celery_worker(
    celery_app: Any, client: Celeriac, queue_name: str, start_process: Callable[..., WorkerProcess]
) -> None:
    start_process(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
            *("-Q", queue_name, "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    assert client.send_task("proj.add", (2, 3)).get(timeout=20) == 5
    greeting = client.send_task("proj.greet", ("ann",), {"punctuation": "."}, priority=3)
    assert greeting.get(timeout=20) == "hello ann."
    sent = time.monotonic()
    later = client.send_task("proj.add", (1, 1), countdown=2)
    assert later.get(timeout=20) == 2
    assert time.monotonic() - sent >= 1.9
    failed = client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.state == "FAILURE"
    assert "ValueError: broken on purpose" in (failed.traceback or "")
    last = (signature("proj.add", (2, 2), app=client) | signature("proj.add", (4,), app=client)).delay()
    assert last.get(timeout=20) == 8  # the Celery worker sends the next step
    assert last.parent is not None and last.parent.get(timeout=5) == 4
