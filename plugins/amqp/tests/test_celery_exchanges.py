"""Celery 5 and celeriac routing through a named topic exchange, both directions.

Celery's side declares ``task_queues = [Queue(q, Exchange(x, type="topic"), routing_key="media.#")]``;
celeriac's ``[amqp.queues.q]`` declares the same exchange, queue and binding, and either
declares first without upsetting the other. Needs ``celery``; skipped without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac_amqp.testing import delete_exchanges

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
from kombu import Exchange, Queue

media = Exchange(os.environ["INTEROP_EXCHANGE"], type="topic")
app.conf.task_queues = [Queue(os.environ["INTEROP_QUEUE"], media, routing_key="media.#")]
"""
)


@pytest.fixture
def exchange(amqp_url: str, queue_name: str) -> Iterator[str]:
    name = f"{queue_name}-x"
    yield name
    delete_exchanges(amqp_url, [name])


@pytest.fixture
def celery_app(
    project: Path,
    amqp_url: str,
    queue_name: str,
    exchange: str,
    result_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    app = load_celery_project(
        project,
        "celery_routed",
        CELERY_PROJECT,
        monkeypatch,
        INTEROP_URL=amqp_url,
        INTEROP_BACKEND=REDIS_URL,
        INTEROP_QUEUE=queue_name,
        INTEROP_EXCHANGE=exchange,
        INTEROP_PREFIX=result_prefix,
    )
    yield app
    app.close()


def test_celery_client_routes_to_celeriac_worker_on_the_bound_queue(
    celery_app: Any,
    project: Path,
    queue_name: str,
    exchange: str,
    start_process: Callable[..., WorkerProcess],
) -> None:
    config = project / "celeriac.toml"
    config.write_text(
        config.read_text()
        + f'[amqp.queues."{queue_name}"]\nexchange = "{exchange}"\n'
        + 'exchange_type = "topic"\nrouting_key = "media.#"\n'
    )
    worker = start_process(celeriac_worker("-Q", queue_name, "-c", "2"))
    sent = celery_app.send_task("proj.add", (2, 3), exchange=exchange, routing_key="media.video")
    assert sent.get(timeout=20) == 5
    assert (
        celery_app.send_task("proj.add", (4, 4), routing_key="media.audio", exchange=exchange).get(timeout=20)
        == 8
    )
    assert worker.proc.poll() is None


def test_celeriac_client_routes_to_celery_worker_with_task_queues(
    celery_app: Any,
    client: Celeriac,
    queue_name: str,
    exchange: str,
    start_process: Callable[..., WorkerProcess],
) -> None:
    start_process(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_routed", "worker", "-P", "threads", "-c", "2"),
            *("-Q", queue_name, "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    result = client.send_task("proj.add", (2, 3), exchange=exchange, routing_key="media.video")
    assert result.get(timeout=20) == 5
    later = client.send_task("proj.add", (1, 1), exchange=exchange, routing_key="media.audio", countdown=0.5)
    assert later.get(timeout=20) == 2
