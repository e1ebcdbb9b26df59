"""Fixtures for tests against a real RabbitMQ: the server from ``AMQP_URL``, a vhost per session.

RabbitMQ defaults to ``amqp://guest:guest@127.0.0.1:5672//``. When it cannot be reached the
tests are skipped with the reason, except under ``CI=true``, where they fail. When
``rabbitmqctl`` works (a local server) the session runs in a vhost of its own, deleted at
the end; otherwise on the URL's vhost with queue names unique to each test, deleted after it.
Redis (``REDIS_URL``, default db 13) holds results for the worker and Celery tests.
"""

from __future__ import annotations

import importlib.util
import secrets
import textwrap
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.plugin import Config
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for  # noqa: F401 - kept importable from here for the suite's modules
from celeriac.testing import write_project
from celeriac_amqp import AmqpConfig
from celeriac_amqp import make_transport
from celeriac_amqp import testing as amqp_testing
from celeriac_amqp.testing import delete_queues
from celeriac_redis import testing as redis_testing

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The broker URL, on a vhost of this session's own when ``rabbitmqctl`` can make one."""
    with amqp_testing.private_vhost(amqp_testing.server_url()) as url:
        yield url


@pytest.fixture
def queue_name(amqp_url: str) -> Iterator[str]:
    """A queue name of this test's own; it and its dead-letter queue are deleted afterwards."""
    name = f"celeriac-test-{secrets.token_hex(6)}"
    yield name
    delete_queues(amqp_url, [name, f"{name}.dead"])


def make_config(**settings: Any) -> Config:
    names = {"max_priority", "queue_type", "delay_precision", "heartbeat", "retry_backoff_base", "confirms"}
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

@app.task
def mark(n, path):
    with open(path, "a") as f:  # one short write per run, appended atomically
        f.write(f"{n}\\n")
"""


@pytest.fixture
def result_prefix() -> Iterator[str]:
    """A key prefix of this test's own for its results; its keys are deleted afterwards."""
    redis_testing.require_redis(REDIS_URL)
    with redis_testing.private_prefix(REDIS_URL, name="celeriac-amqp-test") as prefix:
        yield prefix


@pytest.fixture
def project(tmp_path: Path, amqp_url: str, queue_name: str, result_prefix: str) -> Path:
    """A project directory: a tasks module and a celeriac.toml on this test's queue."""
    return write_project(
        tmp_path,
        TASKS,
        f'broker = "{amqp_url}"\nresult_store = "{REDIS_URL}"\ndefault_queue = "{queue_name}"\n'
        '[plugins]\nenable = ["amqp", "redis", "json", "threads"]\n'
        "[worker]\npoll_timeout = 0.2\n"
        f'[redis]\nresult_key_prefix = "{result_prefix}"\n',
    )


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
    env = subprocess_env(
        project, drop=("CELERIAC_", "CELERY_"), INTEROP_URL=amqp_url, INTEROP_PREFIX=result_prefix
    )
    with process_group(project, env) as processes:

        def start(command: list[str], ready_line: str = "ready: consuming") -> WorkerProcess:
            return processes.start(command, ready=ready_line, timeout=30, log="process")

        yield start


def celeriac_worker(*args: str) -> list[str]:
    return celeriac_command("proj", "worker", *args)


#: The start of the Celery project module of the interop tests: the app on the test's broker,
#: queue and result prefix (read from the environment, here and in its worker), and ``proj.add``.
CELERY_PROJECT_BASE = """
import os
from celery import Celery

app = Celery(__name__, broker=os.environ["INTEROP_URL"], backend=os.environ["INTEROP_BACKEND"])
app.conf.update(
    task_default_queue=os.environ["INTEROP_QUEUE"],
    result_backend_transport_options={"global_keyprefix": os.environ["INTEROP_PREFIX"]},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

@app.task(name="proj.add")
def add(x, y):
    return x + y
"""


def load_celery_project(
    project: Path, module: str, source: str, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Any:
    """Write a Celery project module into ``project``, set the ``env`` variables it reads
    (here and in the worker processes it starts), import it and return its Celery app."""
    (project / f"{module}.py").write_text(textwrap.dedent(source))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(module, project / f"{module}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.app
