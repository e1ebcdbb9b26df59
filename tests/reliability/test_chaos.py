"""Fault injection on every transport: real worker processes, every run noted in a file.

Each scenario sends tasks, injects one fault, and asserts that no task was lost (duplicates
are counted, not refused: delivery is at-least-once) and that the worker recovered by itself,
or, where the fault killed it, that a restarted worker finished the work. Short by default;
``make chaos`` runs it with thousands of tasks and prints the table (see chaos.py).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac_amqp.testing import private_vhost
from celeriac_amqp.testing import require_rabbitmq
from celeriac_redis.testing import private_prefix
from celeriac_redis.testing import require_redis

from .chaos import Project
from .chaos import alive
from .chaos import figures
from .chaos import own_redis
from .chaos import task_count
from .chaos import tasks_module
from .chaos import wait_for
from .proxy import cuttable_proxy

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

TRANSPORTS = ["sqlite", "redis-streams", "redis-kombu", "amqp-classic", "amqp-quorum"]
NETWORKED = TRANSPORTS[1:]
REDIS = "redis://127.0.0.1:6379/0"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"
COMMON = "visibility_timeout = 3.0\n[worker]\npoll_timeout = 0.2\nmax_deliveries = 3\n"


def config_for(transport: str, private: str, port: int | None = None) -> str:
    """The project's celeriac.toml; ``port`` sends the broker connection through a proxy."""
    if transport == "sqlite":
        return f'broker = "sqlite:///broker.sqlite3"\nresult_store = "sqlite:///results.sqlite3"\n{COMMON}'
    if transport.startswith("redis"):
        broker = REDIS.replace("6379", str(port)) if port else REDIS
        layout = "kombu" if transport == "redis-kombu" else "streams"
        return (
            f'broker = "{broker}"\nresult_store = "{REDIS}"\n{COMMON}'
            f'[redis]\nlayout = "{layout}"\nkey_prefix = "{private}"\nresult_key_prefix = "{private}"\n'
            f'kombu_global_keyprefix = "{private}"\n'
        )
    broker = private.replace(":5672", f":{port}") if port else private
    queue_type = "quorum" if transport == "amqp-quorum" else "classic"
    prefix = f"chaos-{private.rsplit('/', 1)[-1]}:"
    return (
        f'broker = "{broker}"\nresult_store = "{REDIS}"\n{COMMON}'
        f'[amqp]\nqueue_type = "{queue_type}"\n[redis]\nresult_key_prefix = "{prefix}"\n'
    )


@contextlib.contextmanager
def private_namespace(transport: str) -> Iterator[str]:
    """A key prefix or vhost of the test's own (the SQLite files are the test's anyway)."""
    if transport == "sqlite":
        yield ""
        return
    require_redis(REDIS)
    if transport.startswith("redis"):
        with private_prefix(REDIS, name="celeriac-chaos") as prefix:
            yield prefix
        return
    require_rabbitmq(AMQP)
    with private_vhost(AMQP, prefix="celeriac-chaos") as url:
        yield url


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def project(transport: str, tmp_path: Path) -> Iterator[Project]:
    (tmp_path / "chaosproj.py").write_text(tasks_module())
    with private_namespace(transport) as private:
        chaos = Project(tmp_path, transport, config_for(transport, private), private)
        chaos.write_config()
        try:
            yield chaos
        finally:
            chaos.kill_all()


@pytest.fixture
def client(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celeriac]:
    monkeypatch.chdir(project.directory)
    monkeypatch.syspath_prepend(str(project.directory))
    sys.modules.pop("chaosproj", None)
    import chaosproj

    yield chaosproj.app
    chaosproj.app.close()
    sys.modules.pop("chaosproj", None)


def send(client: Celeriac, count: int, seconds: float = 0.0) -> None:
    """Tasks ``0 .. count-1``; in a long run each sleeps a tenth as long, so the run ends in
    minutes while tasks are still running when the fault comes."""
    pause = seconds if count <= 200 else seconds / 10
    for n in range(count):
        client.send_task("chaosproj.work", (n, pause))


def ran(project: Project) -> int:
    return sum(c for n, c in project.runs().items() if n >= 0)


# --- a worker killed -----------------------------------------------------------------------


def test_sigkill_of_the_process_group(client: Celeriac, project: Project) -> None:
    count = task_count(60)
    send(client, count, 0.01)
    worker = project.start("-P", "prefork", "-c", "2")
    wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
    killed = time.time()
    import os

    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    project.start("-P", "prefork", "-c", "2")
    recovery = project.first_run_after(killed, 60)
    project.wait_all(count, 300)
    result = figures(project, "SIGKILL process group", count, recovery)
    assert result.lost == 0


def test_sigkill_of_the_parent_only(client: Celeriac, project: Project) -> None:
    count = task_count(60)
    send(client, count, 0.01)
    worker = project.start("-P", "prefork", "-c", "2")
    wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
    orphans = worker.descendants()
    killed = time.time()
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in orphans), 10, "the zygote and children to exit")
    project.start("-P", "prefork", "-c", "2")
    recovery = project.first_run_after(killed, 60)
    project.wait_all(count, 300)
    result = figures(project, "SIGKILL parent only", count, recovery)
    assert result.lost == 0


def test_sigkill_of_one_busy_prefork_child(client: Celeriac, project: Project) -> None:
    count = task_count(40)
    worker = project.start("-P", "prefork", "-c", "2")
    send(client, count, 0.05)
    wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
    children = set(worker.descendants())
    lines = project.runs_file.read_text().splitlines()
    busy = int(next(line.split()[1] for line in reversed(lines) if int(line.split()[1]) in children))
    killed = time.time()
    import os

    os.kill(busy, signal.SIGKILL)
    recovery = project.first_run_after(killed, 60)
    project.wait_all(count, 300)
    assert worker.running(), worker.output()  # recovered by itself
    result = figures(project, "SIGKILL one busy child", count, recovery)
    assert result.lost == 0


# --- the connection cut --------------------------------------------------------------------


@pytest.mark.parametrize("transport", NETWORKED, indirect=True)
def test_connection_cut_through_a_proxy(client: Celeriac, project: Project, transport: str) -> None:
    count = task_count(60)
    target = 6379 if transport.startswith("redis") else 5672
    with cuttable_proxy(target) as proxy:
        project.write_config(config_for(transport, project.private, proxy.port))
        worker = project.start("-P", "threads", "-c", "4")
        project.write_config()
        send(client, count, 0.01)
        wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
        proxy.cut()
        time.sleep(2.0)  # the outage
        restored = time.time()
        proxy.restore()
        # The worker may have run all it held during the outage: tasks sent now show that it
        # consumes again, by itself.
        probes = max(count // 10, 5)
        for n in range(count, count + probes):
            client.send_task("chaosproj.work", (n, 0.0))
        recovery = project.first_run_after(restored, 120)
        project.wait_all(count + probes, 300)
    assert worker.running(), worker.output()
    result = figures(project, "connection cut (proxy)", count + probes, recovery)
    assert result.lost == 0


@pytest.mark.parametrize("transport", ["amqp-classic", "amqp-quorum"], indirect=True)
def test_rabbitmq_closes_the_connections_of_the_vhost(client: Celeriac, project: Project) -> None:
    count = task_count(60)
    vhost = urllib.parse.unquote(project.private.rsplit("/", 1)[-1])
    worker = project.start("-P", "threads", "-c", "4")
    send(client, count, 0.01)
    wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
    closed = time.time()
    subprocess.run(
        ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "chaos test"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    recovery = project.first_run_after(closed, 120)
    project.wait_all(count, 300)
    assert worker.running(), worker.output()
    result = figures(project, "close_all_connections --vhost", count, recovery)
    assert result.lost == 0


@pytest.mark.parametrize("transport", ["redis-streams", "redis-kombu"], indirect=True)
def test_own_redis_killed_and_restarted(client: Celeriac, project: Project, transport: str) -> None:
    count = task_count(60)
    with own_redis(project.directory) as restart:
        port = restart.port  # type: ignore[attr-defined]
        config = config_for(transport, project.private).replace("6379", str(port))
        project.write_config(config)
        client.close()
        sys.modules.pop("chaosproj", None)
        import chaosproj

        own = chaosproj.app
        try:
            # Sent before the worker starts, so a long run still has tasks left at the fault.
            send(own, count, 0.01)
            worker = project.start("-P", "threads", "-c", "4")
            wait_for(lambda: ran(project) >= count // 3, 120, "a third of the tasks to run")
            restart()
            restarted = time.time()
            recovery = project.first_run_after(restarted, 120)
            project.wait_all(count, 300)
            assert worker.running(), worker.output()
        finally:
            own.close()
    result = figures(project, "own Redis SIGKILLed, restarted", count, recovery)
    assert result.lost == 0


# --- poison and malformed messages ---------------------------------------------------------


def test_poison_task_is_dead_lettered_and_good_tasks_flow(client: Celeriac, project: Project) -> None:
    """A task that kills its worker (os._exit): dead-lettered after max_deliveries (3) starts,
    counted against it alone, while the tasks prefetched beside it run; a supervisor (here,
    the test) restarts the worker each time it dies."""
    count = task_count(40)
    client.send_task("chaosproj.poison")
    send(client, count, 0.01)
    started = time.time()
    restarts = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        worker = project.workers[-1] if project.workers else None
        if worker is None or not worker.running():
            assert restarts <= 6, f"restarted {restarts} times:\n{project.workers[-1].output()[-3000:]}"
            # Not waiting for "ready": the poison task may kill it before it logs that.
            project.start("-P", "threads", "-c", "2", ready=False)
            restarts += 1
        if all(project.runs()[n] for n in range(count)) and len(client.transport.dead_letters()) >= 1:
            break
        time.sleep(0.05)
    project.wait_all(count, 10)
    dead = client.transport.dead_letters()
    assert [d.envelope.headers.get("task") for d in dead] == ["chaosproj.poison"], [d.reason for d in dead]
    assert "started 3 times" in dead[0].reason
    assert project.runs()[-1] == 3  # three starts, then dead-lettered
    result = figures(project, "poison task (os._exit)", count, time.time() - started)
    assert result.lost == 0


def inject_malformed(project: Project, client: Celeriac) -> None:
    """One raw message no worker can read, next to good ones, the transport's own way."""
    if project.transport == "sqlite":
        import sqlite3

        with sqlite3.connect(project.directory / "broker.sqlite3") as conn:
            conn.execute(
                "INSERT INTO messages(queue,priority,visible_at,body,content_type,content_encoding,"
                "headers,properties) VALUES('celery',0,0,x'5b5b305d2c7b7d2c7b7d5d','application/json',"
                "'utf-8','not json {','{}')"
            )
    elif project.transport == "redis-kombu":
        import redis

        conn = redis.Redis.from_url(REDIS)
        conn.lpush(f"{project.private}celery", b"not a kombu message {")
        conn.close()
    elif project.transport.startswith("amqp"):
        import pika

        from celeriac_amqp.testing import connection_parameters

        connection = pika.BlockingConnection(connection_parameters(project.private))
        channel = connection.channel()
        channel.basic_publish(
            "", "celery", b"\xff\xfe not json", pika.BasicProperties(content_type="application/json")
        )
        connection.close()
    else:
        pytest.skip("the streams layout's raw entries are covered by plugins/redis/tests")


@pytest.mark.parametrize("transport", ["sqlite", "redis-kombu", "amqp-classic", "amqp-quorum"], indirect=True)
def test_malformed_message_is_dead_lettered_and_the_rest_run(client: Celeriac, project: Project) -> None:
    count = task_count(40)
    worker = project.start("-P", "threads", "-c", "2")
    send(client, count // 2, 0.0)
    inject_malformed(project, client)
    injected = time.time()
    for n in range(count // 2, count):
        client.send_task("chaosproj.work", (n, 0.0))
    project.wait_all(count, 300)
    wait_for(lambda: len(client.transport.dead_letters()) == 1, 30, "the malformed message dead-lettered")
    assert worker.running(), worker.output()
    result = figures(project, "malformed message/row", count, project.first_run_after(injected, 30))
    assert result.lost == 0
