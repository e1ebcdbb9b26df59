"""SQS (moto's server) under faults: a worker SIGKILLed mid-task, the connection to SQS cut.

Every task notes each run in a file; after the fault every task must have run (lost: 0),
some perhaps twice (at-least-once).
"""

from __future__ import annotations

import signal
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from celeriac import Celeriac
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for
from celeriac_sqs.testing import AWS_ENV
from celeriac_sqs.testing import moto_server
from celeriac_sqs.testing import private_prefix

from .proxy import cuttable_proxy

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(180)]

TASKS = """
import os, time
from celeriac import Celeriac

app = Celeriac("sqsproj")

@app.task
def work(marker, n, seconds):
    with open(marker, "a") as f:
        f.write(f"{n} {os.getpid()}\\n")
    time.sleep(seconds)
    return n
"""


def settings(endpoint: str, prefix: str) -> str:
    return (
        'broker = "sqs://"\nresult_store = "sqlite:///results.sqlite3"\nvisibility_timeout = 2.0\n'
        '[plugins]\nenable = ["sqs", "sqlite", "json", "threads"]\n[worker]\npoll_timeout = 1.0\n'
        f'[sqs]\nendpoint_url = "{endpoint}"\nqueue_prefix = "{prefix}"\nregion = "us-east-1"\n'
        "max_attempts = 1\nconnect_timeout = 1.0\n"
    )


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def sqs_project(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "sqsproj.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "celeriac.toml").write_text(settings(endpoint, private_prefix()))
    return tmp_path


@pytest.fixture
def sqs_client(sqs_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celeriac]:
    monkeypatch.chdir(sqs_project)
    monkeypatch.syspath_prepend(str(sqs_project))
    sys.modules.pop("sqsproj", None)
    import sqsproj

    yield sqsproj.app
    sqsproj.app.close()
    sys.modules.pop("sqsproj", None)


@pytest.fixture
def start(sqs_project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    env = {**subprocess_env(sqs_project), **AWS_ENV}
    with process_group(sqs_project, env) as processes:
        yield lambda *args: processes.start(celeriac_command("sqsproj", "worker", *args), timeout=30)


def runs(marker: Path) -> Counter[int]:
    lines = marker.read_text().splitlines() if marker.exists() else []
    return Counter(int(line.split()[0]) for line in lines)


def test_sigkilled_worker_loses_nothing(
    sqs_client: Celeriac, sqs_project: Path, start: Callable[..., WorkerProcess]
) -> None:
    marker = sqs_project / "runs.txt"
    first = start("-c", "2", "--prefetch", "2")
    results = [sqs_client.send_task("sqsproj.work", (str(marker), n, 0.5)) for n in range(12)]
    wait_for(lambda: sum(runs(marker).values()) >= 3, timeout=30)
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    start("-c", "4")
    assert sorted(r.get(timeout=60) for r in results) == list(range(12))
    counted = runs(marker)
    assert set(counted) == set(range(12))  # lost: 0
    assert sum(counted.values()) >= 12


def test_worker_survives_a_cut_connection_and_loses_nothing(
    sqs_client: Celeriac, sqs_project: Path, endpoint: str, start: Callable[..., WorkerProcess]
) -> None:
    marker = sqs_project / "runs.txt"
    port = urlsplit(endpoint).port
    assert port is not None
    with cuttable_proxy(port) as proxy:
        # The worker reaches SQS through the proxy; the client goes straight to it.
        config = sqs_project / "celeriac.toml"
        config.write_text(config.read_text().replace(endpoint, f"http://127.0.0.1:{proxy.port}"))
        worker = start("-c", "4")
        config.write_text(config.read_text().replace(f"http://127.0.0.1:{proxy.port}", endpoint))
        results: list[Any] = [sqs_client.send_task("sqsproj.work", (str(marker), n, 0.3)) for n in range(30)]
        wait_for(lambda: sum(runs(marker).values()) >= 4, timeout=30)
        proxy.cut()
        wait_for(lambda: "failed" in worker.output(), timeout=30)  # the worker noticed
        proxy.restore()
        assert sorted(r.get(timeout=90) for r in results) == list(range(30))
        assert worker.proc.poll() is None
    counted = runs(marker)
    assert set(counted) == set(range(30))  # lost: 0
