"""``celeriac prometheus`` reading real workers' events from the broker, scraped over HTTP.

On a SQLite file, and on Redis (the events travel through the broker there).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import WorkerProcess

from .conftest import eventually
from .conftest import free_port
from .conftest import value
from .conftest import write_project

pytestmark = pytest.mark.slow
SETTINGS = """
[prometheus]
queues = ["celery", "backlog"]
queue_interval = 0.2
"""


def run_cluster(
    tmp_path: Path, start_process: Callable[..., WorkerProcess], load_project: Callable[[], Any]
) -> None:
    port = free_port()
    hostname = f"cluster-{os.getpid()}@test"
    # The exporter first: it only sees events sent while it listens.
    exporter = start_process("prometheus", "--port", str(port), ready="serving metrics on")
    start_process("worker", "-E", "-c", "2", "-n", hostname)
    proj = load_project()
    results = [proj.add.delay(n, n) for n in range(3)]
    failed, retried = proj.boom.delay(), proj.flaky.delay()
    proj.app.send_task("proj.add", (1, 1), queue="backlog")
    proj.app.send_task("proj.add", (2, 2), queue="backlog")
    assert [r.get(timeout=20) for r in results] == [0, 2, 4]
    assert retried.get(timeout=20) == "ok"
    with pytest.raises(ValueError):
        failed.get(timeout=20)

    add = {"name": "proj.add", "queue": "celery", "hostname": hostname}

    def complete(text: str) -> bool:
        return (
            value(text, "celeriac_tasks_total", state="SUCCESS", **add) == 3
            and value(text, "celeriac_task_runtime_seconds_count", **add) == 3
            and value(text, "celeriac_tasks_total", state="FAILURE", name="proj.boom", hostname=hostname) == 1
            and value(text, "celeriac_tasks_total", state="RETRY", name="proj.flaky", hostname=hostname) == 1
            and value(text, "celeriac_tasks_total", state="SUCCESS", name="proj.flaky", hostname=hostname)
            == 1
            and value(text, "celeriac_queue_length", queue="backlog") == 2
            and value(text, "celeriac_worker_up", hostname=hostname) == 1
        )

    eventually(port, complete, timeout=20)
    assert f"http://127.0.0.1:{port}/metrics" in exporter.output()


def test_cluster_exporter_on_sqlite(
    tmp_path: Path, start_process: Callable[..., WorkerProcess], load_project: Callable[[], Any]
) -> None:
    write_project(tmp_path, SETTINGS)
    run_cluster(tmp_path, start_process, load_project)


def test_cluster_exporter_on_redis(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,  # before start_process, so its keys go after the processes stopped
    start_process: Callable[..., WorkerProcess],
    load_project: Callable[[], Any],
) -> None:
    redis = f'[redis]\nkey_prefix = "{redis_prefix}"\nresult_key_prefix = "{redis_prefix}"\n'
    write_project(tmp_path, SETTINGS + redis, broker=redis_url)
    run_cluster(tmp_path, start_process, load_project)


def test_cluster_exporter_port_in_use(tmp_path: Path) -> None:
    write_project(tmp_path)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env["PYTHONPATH"] = str(tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "celeriac", "-A", "proj", "prometheus", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port} is already in use" in done.stderr, done.stderr
