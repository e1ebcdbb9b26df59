"""Scraping over real HTTP on free loopback ports, projects for worker processes, and Redis.

Redis defaults to ``redis://127.0.0.1:6379/15`` (``REDIS_URL``). When it cannot be reached
the tests that need it are skipped with the reason, except under ``CI=true``, where they
fail. Each test uses keys under its own prefix and deletes only those.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from celeriac.testing import WorkerProcess
from celeriac.testing import wait_for

TASKS = """
from celeriac import Celeriac

app = Celeriac("proj")

@app.task(name="proj.add")
def add(x, y):
    return x + y

@app.task(name="proj.boom")
def boom():
    raise ValueError("boom")

@app.task(name="proj.flaky", bind=True, max_retries=3)
def flaky(call):
    if call.request.retries < 1:
        call.retry(countdown=0)
    return "ok"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> str:
    """GET /metrics from 127.0.0.1:port; fails on anything but 200."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        body: bytes = response.read()
        return body.decode()


def value(text: str, metric: str, /, **labels: str) -> float | None:
    """The value of the sample ``metric`` whose labels include ``labels``; None when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def eventually(port: int, check: Callable[[str], bool], timeout: float = 15.0) -> str:
    """Scrape until ``check`` accepts the text; fail with the last scrape after ``timeout`` s."""
    seen: list[str] = [""]

    def scraped() -> str | None:
        try:
            seen[0] = scrape(port)
        except OSError:
            seen[0] = ""
        return seen[0] if check(seen[0]) else None

    try:
        return wait_for(scraped, timeout, "metrics as expected", interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last scrape:\n{seen[0]}") from None


@pytest.fixture(scope="session")
def redis_url() -> str:
    from celeriac_redis import testing

    return testing.require_redis(testing.server_url())


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and only they."""
    from celeriac_redis import testing

    with testing.private_prefix(redis_url, name="celeriac-prometheus-test") as prefix:
        yield prefix


def write_project(directory: Path, settings: str = "", *, broker: str = "sqlite:///broker.sqlite3") -> None:
    """A tasks module and a celeriac.toml on ``broker`` (``settings``: TOML tables) in ``directory``."""
    (directory / "proj.py").write_text(textwrap.dedent(TASKS))
    (directory / "celeriac.toml").write_text(
        f'broker = "{broker}"\n[worker]\npoll_timeout = 0.2\n' + textwrap.dedent(settings)
    )


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts ``celeriac -A proj ARGS`` in tmp_path; every process is killed by PID afterwards."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: str = "ready: consuming") -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env["PYTHONPATH"] = str(tmp_path)
        command = [sys.executable, "-m", "celeriac", "-A", "proj", *args]
        process = WorkerProcess.start(
            command, cwd=tmp_path, log=tmp_path / f"process-{len(started)}.log", env=env
        )
        started.append(process)
        process.wait_ready(line=ready)
        return process

    yield start
    for process in started:
        process.stop(timeout=10)


@pytest.fixture
def load_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """Imports the project written in tmp_path (the producer side); closes its app afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for key in [k for k in os.environ if k.startswith("CELERIAC_")]:
        monkeypatch.delenv(key)
    loaded: list[Any] = []

    def load() -> Any:
        sys.modules.pop("proj", None)
        import proj  # type: ignore[import-not-found]

        loaded.append(proj)
        return proj

    yield load
    for module in loaded:
        module.app.close()
    sys.modules.pop("proj", None)
