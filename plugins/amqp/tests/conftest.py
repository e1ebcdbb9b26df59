"""Fixtures for tests against a real RabbitMQ: the server from ``AMQP_URL``, a vhost per session.

RabbitMQ defaults to ``amqp://guest:guest@127.0.0.1:5672//``. When it cannot be reached the
tests are skipped with the reason, except under ``CI=true``, where they fail. When
``rabbitmqctl`` works (a local server) the session runs in a vhost of its own, deleted at
the end; otherwise on the URL's vhost with queue names unique to each test, deleted after it.
Redis (``REDIS_URL``, default db 13) holds results for the worker and Celery tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from celeriac.config import Config
from celeriac.testing import WorkerProcess
from celeriac.testing import service_unreachable
from celeriac_amqp import AmqpConfig
from celeriac_amqp import make_transport

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/13"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)


def _parameters(url: str) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    path = urllib.parse.urlsplit(url).path
    parameters.virtual_host = urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"
    parameters.socket_timeout = 2
    parameters.blocked_connection_timeout = 5
    return parameters


def _rabbitmqctl(*args: str) -> bool:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        return False
    try:
        done = subprocess.run([binary, *args], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The broker URL, on a vhost of this session's own when ``rabbitmqctl`` can make one."""
    url = os.environ.get("AMQP_URL", DEFAULT_URL)
    try:
        pika.BlockingConnection(_parameters(url)).close()
    except Exception as exc:
        service_unreachable(
            f"RabbitMQ at {url} is unreachable ({exc!r}); set AMQP_URL or run rabbitmq-server -detached"
        )
    host = urllib.parse.urlsplit(url).hostname
    vhost = f"celeriac-test-{secrets.token_hex(4)}"
    user = urllib.parse.urlsplit(url).username or "guest"
    if host in ("127.0.0.1", "localhost", "::1") and _rabbitmqctl("add_vhost", vhost):
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        base = url[: url.index("/", url.index("//") + 2)]
        yield f"{base}/{urllib.parse.quote(vhost, safe='')}"
        _rabbitmqctl("delete_vhost", vhost)
    else:
        yield url


def delete_queues(url: str, names: list[str]) -> None:
    connection = pika.BlockingConnection(_parameters(url))
    try:
        for name in names:
            channel = connection.channel()
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()
    finally:
        connection.close()


@pytest.fixture
def queue_name(amqp_url: str) -> Iterator[str]:
    """A queue name of this test's own; it and its dead-letter queue are deleted afterwards."""
    name = f"celeriac-test-{secrets.token_hex(6)}"
    yield name
    delete_queues(amqp_url, [name, f"{name}.dead"])


def make_config(**settings: Any) -> Config:
    names = {"max_priority", "queue_type", "delay_precision", "heartbeat", "retry_backoff_base"}
    amqp = AmqpConfig(**{k: settings.pop(k) for k in list(settings) if k in names})
    return Config(sections={"amqp": amqp}, **settings)


@pytest.fixture
def transport(amqp_url: str) -> Iterator[Any]:
    made = make_transport(amqp_url, make_config())
    yield made
    made.close()


# --- worker processes ------------------------------------------------------------------

TASKS = """
import os, time
from celeriac import Celeriac

app = Celeriac("proj")

@app.task
def add(x, y):
    return x + y

@app.task
def slow(seconds, marker=None):
    if marker:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\\n")
    time.sleep(seconds)
    return seconds

@app.task
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"

@app.task
def fail():
    raise ValueError("broken on purpose")
"""


def redis_reachable() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        return f"Redis at {REDIS_URL} (the result store of these tests) is unreachable ({exc!r})"
    return None


@pytest.fixture
def result_prefix() -> Iterator[str]:
    problem = redis_reachable()
    if problem is not None:
        service_unreachable(problem)
    import redis

    prefix = f"celeriac-amqp-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def project(tmp_path: Path, amqp_url: str, queue_name: str, result_prefix: str) -> Path:
    """A project directory: a tasks module and a celeriac.toml on this test's queue."""
    (tmp_path / "proj.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "celeriac.toml").write_text(
        f'broker = "{amqp_url}"\nresult_store = "{REDIS_URL}"\ndefault_queue = "{queue_name}"\n'
        '[plugins]\nenable = ["amqp", "redis", "json", "threads"]\n'
        "[worker]\npoll_timeout = 0.2\n"
        f'[redis]\nresult_key_prefix = "{result_prefix}"\n'
    )
    return tmp_path


@pytest.fixture
def client(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The producer side: the project's app, in the test process."""
    from celeriac import Celeriac

    monkeypatch.chdir(project)
    app = Celeriac("proj", config=project / "celeriac.toml", env={})
    yield app
    app.close()


@pytest.fixture
def start_process(project: Path, amqp_url: str, result_prefix: str) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a process in the project directory and wait for its ready line; killed afterwards."""
    started: list[WorkerProcess] = []

    def start(command: list[str], ready_line: str = "ready: consuming") -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "CELERY_"))}
        env.update(PYTHONPATH=str(project), INTEROP_URL=amqp_url, INTEROP_PREFIX=result_prefix)
        log = project / f"process-{len(started)}.log"
        process = WorkerProcess.start(command, cwd=project, log=log, env=env)
        started.append(process)
        process.wait_ready(timeout=30, line=ready_line)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.signal(signal.SIGKILL)
            process.wait(timeout=10)


def celeriac_worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "celeriac", "-A", "proj", "worker", *args]
