"""The gevent pool in real worker processes (patching cannot happen inside the test process).

Each worker is ``python -m celeriac_gevent -A proj worker -P gevent`` on its own SQLite file,
stopped by its PID and bounded in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import SoftTimeLimitExceededError
from celeriac import TimeLimitExceededError
from celeriac import states
from celeriac.testing import project_app
from celeriac.testing import wait_for
from celeriac.testing import write_project

pytest.importorskip("gevent")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

TASKS = """
import time
from celeriac import Celeriac
from celeriac import SoftTimeLimitExceededError

app = Celeriac("proj")


@app.task
def nap(seconds):
    time.sleep(seconds)
    return seconds


@app.task(soft_time_limit=0.3)
def careful():
    try:
        time.sleep(10)
    except SoftTimeLimitExceededError:
        time.sleep(0.05)
        return "cleaned up"
    return "not interrupted"


@app.task(soft_time_limit=0.3)
def careless():
    time.sleep(10)


@app.task(time_limit=0.3)
def stuck():
    try:
        time.sleep(10)
    except Exception:
        time.sleep(10)  # a task cannot catch its hard limit
"""
CONFIG = 'broker = "sqlite:///broker.sqlite3"\n[worker]\npoll_timeout = 0.2\n'
Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, TASKS, CONFIG)


@pytest.fixture
def client(project: Path) -> Iterator[Celeriac]:
    with project_app(project) as app:
        yield app


@pytest.fixture
def start(project: Path) -> Iterator[Start]:
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, launcher: str = "celeriac_gevent", ready: bool = True) -> subprocess.Popen[bytes]:
        log = project / f"worker-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env["PYTHONPATH"] = str(project)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", launcher, "-A", "proj", "worker", "-P", "gevent", *args],
                cwd=project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        deadline = time.monotonic() + 30
        while ready and "ready: consuming" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


def test_hundred_sleeping_tasks_interleave(client: Celeriac, start: Start) -> None:
    start("-c", "200")
    client.send_task("proj.nap", (0,)).get(timeout=10)
    started = time.monotonic()
    results = [client.send_task("proj.nap", (1,)) for _ in range(100)]
    assert all(r.get(timeout=20) == 1 for r in results)
    assert time.monotonic() - started < 3  # about 1 s, plus SQLite round trips


def test_time_limits(client: Celeriac, start: Start) -> None:
    start("-c", "10")
    assert client.send_task("proj.careful").get(timeout=10) == "cleaned up"
    with pytest.raises(SoftTimeLimitExceededError):
        client.send_task("proj.careless").get(timeout=10)
    began = time.monotonic()
    with pytest.raises(TimeLimitExceededError):
        client.send_task("proj.stuck").get(timeout=10)
    assert time.monotonic() - began < 3


def active_ids(client: Celeriac) -> set[str]:
    """The ids of the tasks the workers that answered are running (the ``active`` command)."""
    replies = client.control.broadcast("active", {}, reply=True, timeout=0.5)
    return {task["id"] for reply in replies for tasks in reply.values() for task in tasks}


def test_warm_shutdown_finishes_the_running_task(client: Celeriac, start: Start) -> None:
    worker = start("-c", "10")
    running = client.send_task("proj.nap", (1,))
    wait_for(lambda: running.id in active_ids(client), 10, "the nap running in the worker")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert running.state == states.SUCCESS


def test_refuses_to_run_unpatched(project: Path, start: Start) -> None:
    worker = start(launcher="celeriac", ready=False)
    assert worker.wait(timeout=30) != 0
    assert "celeriac-gevent" in (project / "worker-0.log").read_text()
