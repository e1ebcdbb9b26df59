"""Real brokers for the interoperability tests: Redis and RabbitMQ on loopback.

``REDIS_URL`` defaults to ``redis://127.0.0.1:6379/15`` and ``AMQP_URL`` to
``amqp://guest:guest@127.0.0.1:5672//``. An unreachable server skips the tests that need it,
with the reason, except under ``CI=true`` where they fail. Each Redis test works under a
key prefix of its own (kombu's ``global_keyprefix`` too, so fan-out channels are private);
on RabbitMQ the session gets a vhost of its own when ``rabbitmqctl`` can make one.

``project`` is a directory where a celeriac app and a Celery app share one broker (each
test runs on Redis and on RabbitMQ); every process started there runs on loopback, is
stopped by PID and waited for with a bound.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import ProcessGroup
from celeriac.testing import WorkerProcess
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for


@pytest.fixture(scope="session")
def redis_url() -> str:
    from celeriac_redis import testing

    return testing.require_redis(testing.server_url())


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and only they."""
    from celeriac_redis import testing

    with testing.private_prefix(redis_url) as prefix:
        yield prefix


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The broker URL, on a vhost of this session's own when ``rabbitmqctl`` can make one."""
    from celeriac_amqp import testing

    with testing.private_vhost(testing.server_url()) as url:
        yield url


# --- a project shared by celeriac and Celery's tools ------------------------------------

CELERIAC_TASKS = """
from celeriac import Celeriac

app = Celeriac("proj")

@app.task
def add(x, y):
    return x + y

@app.task
def fail():
    raise ValueError("broken on purpose")
"""

CELERY_APP = """
import os
from celery import Celery

app = Celery("celery_proj", broker=os.environ["INTEROP_URL"], set_as_current=False)
app.conf.broker_transport_options = {{"global_keyprefix": {prefix!r}}} if {prefix!r} else {{}}

@app.task(name="proj.add")
def add(x, y):
    return x + y
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Project:
    """A directory with a celeriac app (``proj``) and a Celery app (``celery_proj``) on one broker.

    :param kind: ``redis`` (kombu layout, keys and fan-out channels under ``prefix``) or ``amqp``.
    """

    def __init__(self, directory: Path, kind: str, url: str, prefix: str = "") -> None:
        self.directory = directory
        self.url = url
        self.processes = ProcessGroup(directory, self.env)
        plugins = (
            ["redis", "json", "threads", "events"]
            if kind == "redis"
            else ["amqp", "json", "threads", "events"]
        )
        toml = (
            f'broker = "{url}"\nresult_store = ""\n[plugins]\nenable = {json.dumps(plugins)}\n'
            "[worker]\npoll_timeout = 0.2\n"
            "[events]\nbatch_interval = 0.1\ntask_send_sent_event = true\n"
        )
        if kind == "redis":
            toml += (
                f'[redis]\nlayout = "kombu"\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
                f'kombu_global_keyprefix = "{prefix}"\nkombu_poll_interval = 0.05\n'
            )
        (directory / "celeriac.toml").write_text(toml)
        (directory / "proj.py").write_text(textwrap.dedent(CELERIAC_TASKS))
        (directory / "celery_proj.py").write_text(textwrap.dedent(CELERY_APP.format(prefix=prefix)))

    @property
    def env(self) -> dict[str, str]:
        return subprocess_env(
            self.directory,
            drop=("CELERIAC_", "CELERY_"),
            INTEROP_URL=self.url,
            FLOWER_UNAUTHENTICATED_API="true",
        )

    def start(self, *args: str, name: str) -> WorkerProcess:
        return self.processes.start([sys.executable, *args], ready=None, log=name)

    def celeriac_worker(self, hostname: str) -> WorkerProcess:
        worker = self.start("-m", "celeriac", "-A", "proj", "worker", "-E", "-n", hostname, name="celeriac")
        worker.wait_ready()
        return worker

    def celery_worker(self, hostname: str) -> WorkerProcess:
        queue = f"celery-only-{secrets.token_hex(4)}"  # it must not take celeriac's tasks
        worker = self.start(
            *("-m", "celery", "-A", "celery_proj", "worker", "-P", "solo", "-n", hostname, "-Q", queue),
            *("--without-mingle", "--without-gossip", "-l", "INFO"),
            name="celery",
        )
        worker.wait_ready(line="ready.")
        return worker

    def command(self, *args: str, timeout: float = 30.0) -> str:
        """Run a short CLI command (``celery`` or ``celeriac``) and return its output."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout + done.stderr

    def stop_all(self) -> None:
        self.processes.kill()


class Flower:
    """Flower 2 on a free loopback port, read through its HTTP API."""

    def __init__(self, project: Project) -> None:
        self.port = free_port()
        self.process = project.start(
            *("-m", "celery", "-A", "celery_proj", "flower"),
            *(f"--port={self.port}", "--address=127.0.0.1", "--inspect_timeout=3000"),
            name="flower",
        )
        wait_for(self._up, 30, f"Flower on port {self.port}\n{self.process.output()}")

    def _up(self) -> bool:
        if self.process.proc.poll() is not None:
            raise AssertionError(f"Flower exited:\n{self.process.output()}")
        try:
            self.get("/api/workers?status=true")
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(params=["redis", "amqp"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        made = Project(tmp_path, "redis", url, prefix)
    else:
        made = Project(tmp_path, "amqp", request.getfixturevalue("amqp_url"))
    yield made
    made.stop_all()


@pytest.fixture
def client(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The celeriac producer side, in this process, reading the project's configuration."""
    monkeypatch.chdir(project.directory)
    monkeypatch.syspath_prepend(str(project.directory))
    sys.modules.pop("proj", None)
    import proj

    yield proj.app
    sent = proj.app.plugins.pm.get_plugin("events.task_sent")
    if sent is not None:
        sent.close()  # its flushing thread would otherwise outlive the test
    proj.app.close()
    sys.modules.pop("proj", None)


@pytest.fixture
def flower(project: Project) -> Flower:
    return Flower(project)


@pytest.fixture
def poll() -> Callable[[Callable[[], Any], float, str], Any]:
    """``poll(predicate, timeout, what)``: the predicate's first truthy value, or a failure."""
    return wait_for
