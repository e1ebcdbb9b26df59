"""Compressed task messages between Celery 5 and celeriac on one Redis (kombu layout).

A Celery client sends zlib-compressed tasks (``compression="zlib"``) to a celeriac worker
process, and a celeriac client with ``compression = "zlib"`` sends to a Celery worker process;
both run the tasks and return their results. Each message is read raw from Redis before a
worker starts, to show it crossed compressed under kombu's ``compression`` header.

Reuses the Redis fixtures and helpers of the celeriac-redis interop tests
(plugins/redis/tests/conftest.py): a key prefix per test, deleted afterwards and nothing else.
Needs ``celery``, ``celeriac-redis`` and a reachable Redis (``REDIS_URL``, by default
redis://127.0.0.1:6379/15): skipped with the reason otherwise, but failed under ``CI=true``
when Redis is unreachable.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import textwrap
import zlib
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("celery", reason="celery is not installed (pip install 'celery[redis]')")
pytest.importorskip("redis", reason="redis-py is not installed")
pytest.importorskip("celeriac_redis", reason="celeriac-redis is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

_REDIS_CONFTEST = Path(__file__).resolve().parents[2] / "redis" / "tests" / "conftest.py"


def _load_redis_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_celeriac_redis_test_support", _REDIS_CONFTEST)
    if spec is None or spec.loader is None or not _REDIS_CONFTEST.is_file():
        pytest.skip(
            f"the Redis test fixtures ({_REDIS_CONFTEST}) are not in this tree", allow_module_level=True
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_support = _load_redis_conftest()
# The Redis fixtures, shared: Redis from REDIS_URL (skip, or fail under CI=true, when it is
# unreachable) and a key prefix of this test's own, whose keys alone are deleted afterwards.
redis_url = _support.redis_url
redis_client = _support.redis_client
prefix = _support.prefix
from celeriac.testing import WorkerProcess  # noqa: E402 - after the importorskip guards

write_project = _support.write_project

ZLIB = "application/x-gzip"  # kombu's content type for zlib, in the "compression" header
BIG = "x" * 4000  # well above the default threshold (1024 bytes)

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
"""


@pytest.fixture
def kombu_project(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    """celeriac.toml on the kombu layout with celeriac-compression and ``compression = "zlib"``."""
    write_project(tmp_path, redis_url, prefix, layout="kombu")
    config = tmp_path / "celeriac.toml"
    text = config.read_text()
    enable = '[plugins]\nenable = ["redis", "json", "threads"]'
    assert enable in text, "the Redis test project changed; update this test"
    text = text.replace(enable, '[plugins]\nenable = ["redis", "json", "threads", "compression"]')
    config.write_text('compression = "zlib"\n' + text)  # top-level keys before the first table
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
def celeriac_client(kombu_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from celeriac import Celeriac

    monkeypatch.chdir(kombu_project)
    app = Celeriac("proj", config=kombu_project / "celeriac.toml", env={})
    yield app
    app.close()


@pytest.fixture
def start_process(kombu_project: Path, redis_url: str, prefix: str) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []

    def start(command: list[str], ready_line: str) -> Any:
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


def queued(redis_client: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The messages waiting in the default queue's kombu list, by task id."""
    messages = [json.loads(raw) for raw in redis_client.lrange(f"{prefix}celery", 0, -1)]
    return {message["headers"]["id"]: message for message in messages}


def inner_body(message: dict[str, Any]) -> bytes:
    """A kombu message's body as the serializer wrote it (base64 on the wire, maybe compressed)."""
    body = base64.b64decode(message["body"])
    if message["headers"].get("compression") == ZLIB:
        return zlib.decompress(body)
    return body


def test_celery_client_sends_zlib_to_celeriac_worker(
    celery_app: Any, redis_client: Any, prefix: str, start_process: Callable[..., Any]
) -> None:
    small = celery_app.send_task("proj.add", (2, 3), compression="zlib")
    big = celery_app.send_task("proj.greet", (BIG,), {"punctuation": "?"}, compression="zlib")

    waiting = queued(redis_client, prefix)
    for result in (small, big):
        message = waiting[result.id]
        assert message["headers"]["compression"] == ZLIB  # Celery compresses whatever the size
        assert message["content-type"] == "application/json"
        assert json.loads(inner_body(message))[0] in ([2, 3], [BIG])
    assert len(base64.b64decode(waiting[big.id]["body"])) < 200  # really compressed

    worker = start_process(
        [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "2"], "ready: consuming"
    )
    assert small.get(timeout=20) == 5
    assert big.get(timeout=20) == f"hello {BIG}?"
    # And a compressed task sent while the worker is running.
    assert celery_app.send_task("proj.add", (40, 2), compression="zlib").get(timeout=20) == 42
    assert worker.proc.poll() is None
    assert "dead-lettering" not in worker.output()


def test_celeriac_client_sends_zlib_to_celery_worker(
    celeriac_client: Any, redis_client: Any, prefix: str, start_process: Callable[..., Any]
) -> None:
    assert celeriac_client.codec.compressor is not None
    assert celeriac_client.codec.compressor.name == "zlib"
    big = celeriac_client.send_task("proj.greet", (BIG,), {"punctuation": "."})
    small = celeriac_client.send_task("proj.add", (2, 3))

    waiting = queued(redis_client, prefix)
    compressed = waiting[big.id]
    assert compressed["headers"]["compression"] == ZLIB
    assert compressed["content-type"] == "application/json"
    assert json.loads(inner_body(compressed))[0] == [BIG]
    assert len(base64.b64decode(compressed["body"])) < 200
    # Below the threshold the body is sent plain, with no header.
    assert "compression" not in waiting[small.id]["headers"]
    assert json.loads(inner_body(waiting[small.id]))[0] == [2, 3]

    start_process(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-P", "threads", "-c", "2"),
            *("-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        "ready.",
    )
    assert big.get(timeout=20) == f"hello {BIG}."
    assert small.get(timeout=20) == 5
    assert celeriac_client.send_task("proj.greet", ("y" * 3000,)).get(timeout=20) == f"hello {'y' * 3000}!"
