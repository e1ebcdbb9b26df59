"""celery-node (the Node.js Celery client and worker from npm) and celeriac on one queue.

celery-node declares its queue durable without arguments, as Celery does, whenever it
publishes or consumes; these tests run its client and its worker against a celeriac worker
and client, each side starting first in turn. Results go through Redis under Celery's key
layout (``celery-task-meta-<id>``, no prefix: celery-node has none). celery-node is
installed with npm into a temporary directory of the test session; without npm the tests
are skipped with the reason (failed under ``CI=true``).
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from celeriac import Celeriac
from celeriac.testing import ProcessGroup
from celeriac.testing import WorkerProcess
from celeriac.testing import process_group
from celeriac.testing import service_unreachable
from celeriac.testing import subprocess_env

from .conftest import REDIS_URL
from .conftest import celeriac_worker

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CELERY_NODE = "celery-node@0.5.9"

CLIENT = """
const celery = require("celery-node");
const client = celery.createClient(process.env.BROKER, process.env.BACKEND, process.env.QUEUE);
const result = client.sendTask("proj.add", [2, 3], {}, process.env.TASK_ID);
console.log("sent " + process.env.TASK_ID);
result.get(30000)
  .then((value) => { console.log("result " + JSON.stringify(value)); return client.disconnect(); })
  .then(() => process.exit(0))
  .catch((error) => { console.error("failed " + error); process.exit(1); });
"""

WORKER = """
const celery = require("celery-node");
const worker = celery.createWorker(process.env.BROKER, process.env.BACKEND, process.env.QUEUE);
worker.register("proj.add", (x, y) => x + y);
worker.start().then(() => console.log("node worker ready"));
"""


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """celery-node installed by npm into a directory of this session's own."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        service_unreachable("celery-node tests need node and npm (apt-get install nodejs npm)")
    directory = tmp_path_factory.mktemp("celery-node")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-save", CELERY_NODE],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        service_unreachable(f"npm install {CELERY_NODE} failed: {done.stderr.strip()[-500:]}")
    return directory / "node_modules"


@pytest.fixture
def node_project(project: Path, amqp_url: str, queue_name: str) -> Path:
    """The project, with results under Celery's own keys (celery-node cannot prefix them)."""
    (project / "celeriac.toml").write_text(
        f'broker = "{amqp_url}"\nresult_store = "{REDIS_URL}"\ndefault_queue = "{queue_name}"\n'
        '[plugins]\nenable = ["amqp", "redis", "json", "threads"]\n'
        "[worker]\npoll_timeout = 0.2\n"
    )
    (project / "client.js").write_text(textwrap.dedent(CLIENT))
    (project / "worker.js").write_text(textwrap.dedent(WORKER))
    return project


@pytest.fixture
def task_ids() -> Iterator[list[str]]:
    """Task ids of this test; their result keys (unprefixed) are deleted afterwards."""
    ids: list[str] = []
    yield ids
    client = redis.Redis.from_url(REDIS_URL)
    keys = [f"celery-task-meta-{task_id}" for task_id in ids]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def processes(
    node_project: Path, node_modules: Path, amqp_url: str, queue_name: str
) -> Iterator[ProcessGroup]:
    env = subprocess_env(
        node_project,
        drop=("CELERIAC_", "CELERY_"),
        NODE_PATH=str(node_modules),
        BROKER=amqp_url,
        BACKEND=REDIS_URL,
        QUEUE=queue_name,
    )
    with process_group(node_project, env) as group:
        yield group


def _node_client(processes: ProcessGroup, task_id: str) -> WorkerProcess:
    processes.env["TASK_ID"] = task_id
    return processes.start(["node", "client.js"], ready=f"sent {task_id}", timeout=30, log="node-client")


@pytest.mark.parametrize("first", ["celeriac worker", "celery-node client"])
def test_celery_node_client_and_celeriac_worker(
    processes: ProcessGroup, task_ids: list[str], first: str
) -> None:
    task_ids.append(str(uuid.uuid4()))
    if first == "celeriac worker":
        processes.start(celeriac_worker("-c", "2"), timeout=30)
        sender = _node_client(processes, task_ids[0])
    else:
        sender = _node_client(processes, task_ids[0])  # declares the queue and publishes
        processes.start(celeriac_worker("-c", "2"), timeout=30)
    assert sender.wait(timeout=60) == 0, sender.output()
    assert "result 5" in sender.output()


@pytest.mark.parametrize("first", ["celery-node worker", "celeriac client"])
def test_celeriac_client_and_celery_node_worker(
    processes: ProcessGroup, node_project: Path, task_ids: list[str], first: str, monkeypatch: Any
) -> None:
    monkeypatch.chdir(node_project)
    client = Celeriac("proj", config=node_project / "celeriac.toml", env={})

    def start_worker() -> WorkerProcess:
        return processes.start(
            ["node", "worker.js"], ready="node worker ready", timeout=30, log="node-worker"
        )

    try:
        if first == "celery-node worker":
            worker = start_worker()
            result = client.send_task("proj.add", (2, 3))
        else:
            result = client.send_task("proj.add", (2, 3))  # declares the queue
            client.flush()
            worker = start_worker()
        task_ids.append(result.id)
        assert result.get(timeout=30) == 5
        assert "PRECONDITION_FAILED" not in worker.output()
    finally:
        client.close()
