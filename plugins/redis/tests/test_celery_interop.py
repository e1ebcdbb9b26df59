"""Celery 5 and celeriac on one Redis, both directions, with the real ``celery`` package.

A Celery client sends to a celeriac worker process, and a celeriac client to a Celery worker
process (``layout = "kombu"``); results go through the shared Celery-compatible result keys.
Needs ``celery`` (plugins/redis/requirements-test.txt); skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac

from .conftest import WorkerProcess
from .conftest import write_project

pytest.importorskip("celery")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

CELERY_PROJECT = """
import os
from celery import Celery

prefix = os.environ["INTEROP_PREFIX"]
app = Celery("celery_proj", broker=os.environ["INTEROP_URL"], backend=os.environ["INTEROP_URL"])
app.conf.update(
    broker_transport_options={"global_keyprefix": prefix},
    result_backend_transport_options={"global_keyprefix": prefix},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

@app.task(name="proj.add")
def add(x, y):
    return x + y

@app.task(name="proj.greet")
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"

@app.task(name="proj.fail")
def fail():
    raise ValueError("broken on purpose")

@app.task(name="proj.total")
def total(values):
    return sum(values)
"""


@pytest.fixture
def kombu_project(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    write_project(tmp_path, redis_url, prefix, layout="kombu")
    (tmp_path / "celery_proj.py").write_text(textwrap.dedent(CELERY_PROJECT))
    return tmp_path


@pytest.fixture
def celery_app(
    kombu_project: Path, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv("INTEROP_PREFIX", prefix)
    monkeypatch.setenv("INTEROP_URL", redis_url)
    spec = importlib.util.spec_from_file_location("celery_proj", kombu_project / "celery_proj.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.app
    module.app.close()


@pytest.fixture
def celeriac_client(kombu_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celeriac]:
    monkeypatch.chdir(kombu_project)
    app = Celeriac("proj", config=kombu_project / "celeriac.toml", env={})
    yield app
    app.close()


@pytest.fixture
def start_process(kombu_project: Path, redis_url: str, prefix: str) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(command: list[str], ready_line: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "CELERY_"))}
        env.update(PYTHONPATH=str(kombu_project), INTEROP_PREFIX=prefix, INTEROP_URL=redis_url)
        log = kombu_project / f"process-{len(started)}.log"
        process = WorkerProcess.start(command, cwd=kombu_project, log=log, env=env)
        started.append(process)
        process.wait_ready(timeout=30, line=ready_line)
        return process

    yield start
    for process in started:
        process.stop()


def test_celery_client_to_celeriac_worker(
    celery_app: Any, start_process: Callable[..., WorkerProcess]
) -> None:
    worker = start_process(
        [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "2"], "ready: consuming"
    )
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
    assert worker.proc.poll() is None


def test_celeriac_client_to_celery_worker(
    celeriac_client: Celeriac, start_process: Callable[..., WorkerProcess]
) -> None:
    start_process(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
            *("-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    assert celeriac_client.send_task("proj.add", (2, 3)).get(timeout=20) == 5
    greeting = celeriac_client.send_task("proj.greet", ("ann",), {"punctuation": "."}, priority=3)
    assert greeting.get(timeout=20) == "hello ann."
    sent = time.monotonic()
    later = celeriac_client.send_task("proj.add", (1, 1), countdown=2)
    assert later.get(timeout=20) == 2
    assert time.monotonic() - sent >= 1.9
    failed = celeriac_client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.state == "FAILURE"
    assert "ValueError: broken on purpose" in (failed.traceback or "")
