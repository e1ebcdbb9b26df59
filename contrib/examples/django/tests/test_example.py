"""The shop example end to end, on SQLite and on PostgreSQL (a database of the run's own, dropped
afterwards): a real worker process (prefork) started with ``manage.py celeriac worker``, the
Django development server as the web process, and ``manage.py place_order`` as a web process
killed with SIGKILL between its commit and its publish."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from celeriac.testing import ProcessGroup
from celeriac.testing import free_port
from celeriac.testing import process_group
from celeriac.testing import service_unreachable

EXAMPLE = Path(__file__).resolve().parent.parent
MANAGE = str(EXAMPLE / "manage.py")

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

_SENT_AT = (
    "from celeriac_django.models import OutboxMessage\n"
    "out = list(OutboxMessage.objects.filter(task_id={task_id!r}).values_list('sent_at', flat=True))"
)


@attrs.frozen
class Project:
    """The example configured for one database, in a directory of the test's own."""

    directory: Path
    env: dict[str, str]

    def manage(self, *args: str) -> list[str]:
        return [sys.executable, MANAGE, *args]

    def run(self, *args: str, timeout: float = 60) -> str:
        import subprocess

        done = subprocess.run(
            self.manage(*args),
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def query(self, code: str) -> Any:
        """Run ``code`` in ``manage.py shell``; it sets ``out``, printed back as JSON."""
        script = f"import json\n{code}\nprint('OUT=' + json.dumps(out, default=str))"
        output = self.run("shell", "--verbosity", "0", "-c", script)
        return json.loads(output.split("OUT=", 1)[1])

    def group(self) -> Any:
        return process_group(self.directory, self.env)


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "SHOP_", "DJANGO_"))}
    env.update(
        PYTHONPATH=str(EXAMPLE),
        DJANGO_SETTINGS_MODULE="shop.settings",
        SHOP_BROKER=f"sqlite:///{tmp_path / 'broker.sqlite3'}",
        SHOP_DEBUG="0",
    )
    if request.param == "sqlite":
        env["SHOP_SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
        project = Project(tmp_path, env)
        project.run("migrate", "--verbosity", "0")
        yield project
        return
    with postgres_database() as name:
        env.update(SHOP_DATABASE="postgresql", SHOP_PG_NAME=name)
        project = Project(tmp_path, env)
        project.run("migrate", "--verbosity", "0")
        yield project


@pytest.fixture
def processes(project: Project) -> Iterator[ProcessGroup]:
    with project.group() as group:
        yield group


def postgres_database() -> Any:
    """A database of this test's own on the local PostgreSQL, dropped on leaving."""
    import contextlib

    @contextlib.contextmanager
    def made() -> Iterator[str]:
        import psycopg

        name = f"celeriac_django_example_{secrets.token_hex(5)}"
        try:
            admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
        except psycopg.OperationalError as exc:
            service_unreachable(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
        with admin:
            admin.execute(f"CREATE DATABASE {name}")
            try:
                yield name
            finally:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return made()


def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout} s (last: {value!r})")
        time.sleep(0.1)


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def start_worker(processes: ProcessGroup, project: Project, *options: str) -> Any:
    return processes.start(project.manage("celeriac", "worker", "-l", "INFO", *options), timeout=60)


def fulfilments(project: Project, order: int) -> int:
    out: int = project.query(
        f"from orders.models import Fulfilment\nout = Fulfilment.objects.filter(order_id={order}).count()"
    )
    return out


def test_order_through_the_web_server(project: Project, processes: ProcessGroup) -> None:
    worker = start_worker(processes, project)
    port = free_port()
    processes.start(
        project.manage("runserver", "--noreload", f"127.0.0.1:{port}"),
        ready="Quit the server with",
        log="web",
    )
    status, placed = http("POST", f"http://127.0.0.1:{port}/orders/", {"name": "teapot"})
    assert status == 202
    url = f"http://127.0.0.1:{port}/orders/{placed['order']}/"
    seen = until(
        lambda: (body := http("GET", url)[1])["state"] == "SUCCESS" and body, what="the order fulfilled"
    )
    assert seen["fulfilled"] is True
    # Run by a prefork child (not the worker's own process), with a connection of its own.
    assert seen["result"]["order"] == placed["order"]
    assert seen["result"]["worker_pid"] != worker.pid
    row = project.query(
        "from celeriac_django.models import TaskResult\n"
        f"r = TaskResult.objects.get(task_id={placed['task_id']!r})\n"
        "out = [r.status, r.task_name, r.result]"
    )
    assert row[0] == "SUCCESS" and row[1] == "orders.tasks.fulfil"
    assert json.loads(row[2]) == seen["result"]
    # A second order: the child's connection, closed or kept between tasks, still works.
    _, again = http("POST", f"http://127.0.0.1:{port}/orders/", {"name": "kettle"})
    until(
        lambda: http("GET", f"http://127.0.0.1:{port}/orders/{again['order']}/")[1]["fulfilled"],
        what="order 2",
    )
    worker.stop()
    assert "Traceback" not in worker.output(), worker.output()


@pytest.mark.parametrize("relay", ["worker", "command"])
def test_killed_after_commit_is_sent_once(project: Project, processes: ProcessGroup, relay: str) -> None:
    # The "web process" commits its order and task, then is killed before it publishes.
    web = processes.start(
        project.manage("place_order", "killed", "--pause-after-commit"), ready="committed", log="web"
    )
    found = re.search(r"committed (\d+) (\S+)", web.output())
    assert found is not None
    order, task_id = int(found.group(1)), found.group(2)
    os.kill(web.pid, signal.SIGKILL)
    web.wait(timeout=10)
    # Committed, never published.
    assert project.query(_SENT_AT.format(task_id=task_id)) == [None]
    # A transaction that rolls back leaves nothing to send.
    rolled = project.run("place_order", "rolled", "--roll-back")
    rolled_task = rolled.split()[-1]
    assert project.query(_SENT_AT.format(task_id=rolled_task)) == []

    if relay == "command":
        project.run("celeriac", "relay", "--once")
        assert None not in project.query(_SENT_AT.format(task_id=task_id))  # published, marked sent
    worker = start_worker(processes, project)
    until(lambda: fulfilments(project, order) >= 1, what="the killed order fulfilled")
    # A later order, placed and fulfilled, is the barrier: the first ran once, not twice.
    barrier = project.run("place_order", "barrier").split()
    until(lambda: fulfilments(project, int(barrier[1])) >= 1, what="the barrier order fulfilled")
    assert fulfilments(project, order) == 1
    sent = project.query(
        "from celeriac_django.models import OutboxMessage\n"
        "out = list(OutboxMessage.objects.filter(sent_at__isnull=True).values_list('task_id', flat=True))"
    )
    assert sent == []
    assert (
        project.query("from orders.models import Order\nout = Order.objects.filter(name='rolled').count()")
        == 0
    )
    worker.stop()
