"""Celery 5 and celeriac on one SQS (moto's server), both directions, with the real ``celery``.

A Celery client sends to a celeriac worker process, and a celeriac client to a Celery worker
process (kombu's SQS transport, which needs pycurl: Celery's ``sqs`` extra). Results go
through Redis, whose result keys both read (celeriac-redis).
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.testing import WorkerProcess
from celeriac.testing import importable
from celeriac.testing import process_group
from celeriac.testing import subprocess_env
from celeriac_redis import testing as redis_testing
from celeriac_sqs.testing import AWS_ENV

if not (importable("celery") and importable("pycurl")):
    pytest.skip("needs celery with its sqs extra (pycurl)", allow_module_level=True)
pytestmark = [pytest.mark.slow, pytest.mark.integration]

CELERY_PROJECT = """
import os
from urllib.parse import urlsplit
from celery import Celery

endpoint = urlsplit(os.environ["INTEROP_SQS"])
app = Celery(
    "celery_proj",
    broker=f"sqs://testing:testing@{endpoint.hostname}:{endpoint.port}",
    backend=os.environ["INTEROP_REDIS"],
)
app.conf.update(
    broker_transport_options={
        "region": "us-east-1",
        "queue_name_prefix": os.environ["INTEROP_PREFIX"],
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
        "visibility_timeout": 60,
    },
    result_backend_transport_options={"global_keyprefix": os.environ["INTEROP_PREFIX"]},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

@app.task(name="proj.add")
def add(x, y):
    return x + y

@app.task(name="proj.fail")
def fail():
    raise ValueError("broken on purpose")
"""

CELERIAC_PROJECT = """
from celeriac import Celeriac

app = Celeriac("proj")

@app.task(name="proj.add")
def add(x, y):
    return x + y

@app.task(name="proj.fail")
def fail():
    raise ValueError("broken on purpose")
"""


@pytest.fixture
def redis_url() -> str:
    return redis_testing.require_redis(redis_testing.server_url())


@pytest.fixture
def project(tmp_path: Path, endpoint: str, prefix: str, redis_url: str) -> Iterator[Path]:
    (tmp_path / "celery_proj.py").write_text(textwrap.dedent(CELERY_PROJECT))
    (tmp_path / "proj.py").write_text(textwrap.dedent(CELERIAC_PROJECT))
    (tmp_path / "celeriac.toml").write_text(
        f'broker = "sqs://"\nresult_store = "{redis_url}"\nvisibility_timeout = 60.0\n'
        '[plugins]\nenable = ["sqs", "redis", "json", "threads"]\n'
        "[worker]\npoll_timeout = 1.0\n"
        f'[sqs]\nendpoint_url = "{endpoint}"\nqueue_prefix = "{prefix}"\nregion = "us-east-1"\n'
        f'[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
    )
    try:
        yield tmp_path
    finally:
        redis_testing.delete_prefixed(redis_url, prefix)


@pytest.fixture
def start(
    project: Path, endpoint: str, prefix: str, redis_url: str
) -> Iterator[Callable[..., WorkerProcess]]:
    env = subprocess_env(
        project,
        drop=("CELERIAC_", "CELERY_"),
        INTEROP_SQS=endpoint,
        INTEROP_PREFIX=prefix,
        INTEROP_REDIS=redis_url,
    )
    env.update(AWS_ENV)
    with process_group(project, env) as processes:
        yield lambda command, ready: processes.start(command, ready=ready, timeout=60)


@pytest.fixture
def celery_app(
    project: Path, endpoint: str, prefix: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    for name, value in {
        "INTEROP_SQS": endpoint,
        "INTEROP_PREFIX": prefix,
        "INTEROP_REDIS": redis_url,
    }.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("celery_proj", project / "celery_proj.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.app
    module.app.close()


@pytest.fixture
def celeriac_client(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celeriac]:
    monkeypatch.chdir(project)
    app = Celeriac("proj", config=project / "celeriac.toml", env={})
    yield app
    app.close()


def test_celery_client_to_celeriac_worker(celery_app: Any, start: Callable[..., WorkerProcess]) -> None:
    worker = start([sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "2"], "ready: consuming")
    assert celery_app.send_task("proj.add", (2, 3)).get(timeout=30) == 5
    sent = time.monotonic()
    # Celery sends a countdown at once with an eta header; the celeriac worker delays it on SQS.
    later = celery_app.send_task("proj.add", (1, 1), countdown=2)
    assert later.get(timeout=30) == 2
    assert time.monotonic() - sent >= 1.9
    failed = celery_app.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=30)
    assert "ValueError: broken on purpose" in failed.traceback
    assert worker.proc.poll() is None


def test_celeriac_client_to_celery_worker(
    celeriac_client: Celeriac, start: Callable[..., WorkerProcess]
) -> None:
    start(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
            *("-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    assert celeriac_client.send_task("proj.add", (2, 3)).get(timeout=30) == 5
    sent = time.monotonic()
    # celeriac delays it with SQS's DelaySeconds; Celery's worker receives it when due.
    later = celeriac_client.send_task("proj.add", (1, 1), countdown=2)
    assert later.get(timeout=30) == 2
    assert time.monotonic() - sent >= 1.9
    failed = celeriac_client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=30)
    assert failed.state == "FAILURE"
