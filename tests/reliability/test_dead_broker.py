"""A broker that is down: producers get celeriac's error in bounded time, the CLI one line, workers wait.

Redis is a server of the test's own (tests/reliability/own_redis.py), stopped and started
on its port; the shared server is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import PublishError
from celeriac import PublishTimeoutError
from celeriac.testing import subprocess_env
from tests.reliability.conftest import WorkerProcess
from tests.reliability.conftest import wait_for
from tests.reliability.own_redis import OwnRedis
from tests.reliability.proxy import CuttableProxy
from tests.reliability.proxy import cuttable_proxy

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SECRET = "deadBrokerPw9"
TASKS = """
from celeriac import Celeriac
app = Celeriac("proj")

@app.task
def add(x, y):
    return x + y
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = OwnRedis(directory, password=SECRET)
    redis.start()
    yield redis
    redis.stop()


def _app(url: str, layout: str, **settings: object) -> Celeriac:
    return Celeriac(
        "proj",
        broker=url,
        result_store="",
        env={},
        config=False,
        redis={"layout": layout, "key_prefix": "dead-broker:"},
        **settings,
    )


@pytest.mark.parametrize("layout", ["streams", "kombu"])
def test_publish_to_a_dead_redis_raises_celeriacs_error_after_publish_timeout(
    server: OwnRedis, layout: str
) -> None:
    app = _app(server.url(1), layout, publish_timeout=2.0)
    add = app.task(name="proj.add")(lambda x, y: x + y)
    add.delay(0, 0)  # connected once: the outage comes later
    server.stop()
    started = time.monotonic()
    with pytest.raises(PublishTimeoutError) as raised:
        add.delay(1, 2)
    elapsed = time.monotonic() - started
    app.close()
    assert 1.9 <= elapsed <= 4.0, elapsed
    message = str(raised.value)
    assert f"redis://:***@127.0.0.1:{server.port}/1" in message, message
    assert "within publish_timeout (2 s)" in message and "the message was not sent" in message
    assert SECRET not in message
    assert isinstance(raised.value, PublishError)


def test_publish_timeout_defaults_to_ten_seconds_at_most(server: OwnRedis) -> None:
    app = _app(server.url(1), "streams")
    add = app.task(name="proj.add")(lambda x, y: x + y)
    server.stop()
    started = time.monotonic()
    with pytest.raises(PublishTimeoutError, match="within publish_timeout \\(10 s\\)"):
        add.delay(1, 2)
    app.close()
    assert time.monotonic() - started <= 10.5


@pytest.mark.parametrize("layout", ["streams", "kombu"])
def test_an_outage_shorter_than_publish_timeout_is_absorbed(server: OwnRedis, layout: str) -> None:
    """docs/brokers/redis.md: a publish rides out an outage of up to publish_timeout."""
    app = _app(server.url(2), layout)
    add = app.task(name="proj.add")(lambda x, y: x + y)
    add.delay(0, 0)
    server.stop()
    restart = threading.Timer(4.0, server.start)
    restart.start()
    started = time.monotonic()
    try:
        add.delay(1, 2)  # waits for the server to come back
    finally:
        restart.join()
    assert time.monotonic() - started >= 3.5
    assert app.transport.queue_length("celery") == 1  # the server came back empty: this one only
    app.close()


def _project(directory: Path, url: str, extra: str = "") -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "proj.py").write_text(textwrap.dedent(TASKS))
    (directory / "celeriac.toml").write_text(
        f'broker = "{url}"\nresult_store = "{url}"\n'
        '[redis]\nkey_prefix = "dead-broker:"\nretry_attempts = 1\n'
        "[worker]\npoll_timeout = 0.2\nbroker_retry_base = 0.5\nbroker_retry_max = 1.0\n" + extra
    )
    return directory


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", *args],
        cwd=project,
        env=subprocess_env(project),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_commands_against_a_dead_broker_print_one_error_line(tmp_path: Path, server: OwnRedis) -> None:
    project = _project(tmp_path / "project", server.url(3))
    server.stop()
    for args in (("call", "proj.add", "--args", "[1, 2]"), ("status",), ("inspect", "active")):
        ran = _cli(project, *args)
        assert ran.returncode == 2, ran
        assert ran.stderr.startswith("error: ") and ran.stderr.count("\n") == 1, ran.stderr
        assert "Traceback" not in ran.stderr and SECRET not in ran.stderr + ran.stdout
        assert f"127.0.0.1:{server.port}" in ran.stderr, ran.stderr


def _start_worker(project: Path) -> WorkerProcess:
    log = project / "worker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-P", "threads", "-c", "1"],
            cwd=project,
            env=subprocess_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(proc, log)


def test_a_worker_started_before_its_broker_waits_then_consumes(tmp_path: Path, server: OwnRedis) -> None:
    project = _project(tmp_path / "project", server.url(4))
    server.stop()
    worker = _start_worker(project)
    try:
        attempt = f"cannot reach the broker redis://:***@127.0.0.1:{server.port}/4"
        wait_for(lambda: worker.output().count(attempt) >= 3, timeout=30)
        lines = [line for line in worker.output().splitlines() if attempt in line]
        assert all("WARNING" in line and "trying again in" in line for line in lines), lines
        assert "attempt 3, trying again in 1.0 s" in worker.output()
        assert worker.proc.poll() is None
        server.start()
        worker.wait_ready(timeout=30)
        app = Celeriac(
            "check",
            broker=server.url(4),
            result_store=server.url(4),
            env={},
            config=False,
            redis={"key_prefix": "dead-broker:"},
        )
        try:
            assert app.send_task("proj.add", (2, 3)).get(timeout=20) == 5
        finally:
            app.close()
        worker.signal(15)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    output = worker.output()
    assert "Traceback" not in output and SECRET not in output, output


def test_a_worker_waiting_for_its_broker_stops_on_sigterm(tmp_path: Path, server: OwnRedis) -> None:
    project = _project(tmp_path / "project", server.url(5))
    server.stop()
    worker = _start_worker(project)
    try:
        wait_for(lambda: "cannot reach the broker" in worker.output(), timeout=30)
        started = time.monotonic()
        worker.signal(15)
        assert worker.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    assert "Traceback" not in worker.output(), worker.output()
    assert "stopped before its broker answered" in worker.output()


def test_a_bounded_number_of_attempts_ends_in_one_error(tmp_path: Path, server: OwnRedis) -> None:
    project = _project(tmp_path / "project", server.url(6), "broker_retry_attempts = 2\n")
    server.stop()
    worker = _start_worker(project)
    try:
        assert worker.wait(timeout=60) == 2
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
    output = worker.output()
    assert "Traceback" not in output, output
    assert output.rstrip().splitlines()[-1].startswith("error: cannot reach the broker redis://:***@"), output


# --- RabbitMQ, behind a proxy the test cuts ------------------------------------------------


@pytest.fixture
def rabbit_vhost() -> Iterator[str]:
    pytest.importorskip("celeriac_amqp")
    from celeriac_amqp.testing import private_vhost
    from celeriac_amqp.testing import server_url

    with private_vhost(server_url(), prefix="dead-broker") as url:
        yield url


@pytest.fixture
def rabbit_proxy() -> Iterator[CuttableProxy]:
    with cuttable_proxy(5672) as proxy:
        yield proxy


def _through(url: str, proxy: CuttableProxy) -> str:
    return url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")


def _queued_args(url: str, queue: str) -> list[object]:
    import json

    import pika

    from celeriac_amqp.testing import connection_parameters

    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        channel = connection.channel()
        found: list[object] = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append(json.loads(body)[0])
    finally:
        connection.close()


def test_rabbitmq_publish_that_timed_out_is_never_sent_later(
    rabbit_vhost: str, rabbit_proxy: CuttableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    url = _through(rabbit_vhost, rabbit_proxy)
    app = Celeriac("proj", broker=url, result_store="", env={}, config=False, publish_timeout=2.0)
    add = app.task(name="proj.add")(lambda x, y: x + y)
    try:
        add.delay(0, 0)
        with caplog.at_level("WARNING", logger="celeriac.amqp"):
            rabbit_proxy.cut()
            wait_for(lambda: "publishing connection lost" in caplog.text, timeout=10)
            started = time.monotonic()
            with pytest.raises(PublishTimeoutError) as raised:
                add.delay(1, 2)
            assert 1.9 <= time.monotonic() - started <= 4.0
        message = str(raised.value)
        assert "amqp://guest:***@127.0.0.1" in message and "was not sent and will not be" in message, message
        rabbit_proxy.restore()
        add.delay(3, 4)  # reconnects; the confirm window is flushed by close()
    finally:
        app.close()
    queued = _queued_args(rabbit_vhost, "celery")
    # [0, 0] may come twice (written, cut before its confirm: sent again); [1, 2] never.
    assert [1, 2] not in queued and queued.count([3, 4]) == 1 and [0, 0] in queued, queued


def test_a_worker_started_before_rabbitmq_is_reachable_waits_then_consumes(
    tmp_path: Path, rabbit_vhost: str, rabbit_proxy: CuttableProxy
) -> None:
    url = _through(rabbit_vhost, rabbit_proxy)
    rabbit_proxy.cut()
    project = tmp_path / "project"
    project.mkdir()
    (project / "proj.py").write_text(textwrap.dedent(TASKS))
    (project / "celeriac.toml").write_text(
        f'broker = "{url}"\nresult_store = "rpc://"\n'
        "[amqp]\noperation_timeout = 2.0\n"
        "[worker]\npoll_timeout = 0.2\nbroker_retry_base = 0.5\nbroker_retry_max = 1.0\n"
    )
    worker = _start_worker(project)
    try:
        waiting = "cannot reach the broker amqp://guest:***@"
        wait_for(lambda: worker.output().count(waiting) >= 2 or worker.proc.poll() is not None, timeout=40)
        assert worker.proc.poll() is None, worker.output()
        rabbit_proxy.restore()
        worker.wait_ready(timeout=40)
        app = Celeriac("check", broker=rabbit_vhost, result_store="", env={}, config=False)
        try:
            app.send_task("proj.add", (2, 3))
        finally:
            app.close()
        wait_for(lambda: "proj.add" in worker.output() and "succeeded" in worker.output(), timeout=30)
        worker.signal(15)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    # pika logs its own failed connection attempts (with a traceback) at ERROR; celeriac
    # itself neither fails nor gives up.
    assert "CRITICAL" not in worker.output() and "\nerror:" not in worker.output(), worker.output()


def test_a_running_worker_outlives_an_outage_longer_than_the_retry_budget(
    tmp_path: Path, server: OwnRedis
) -> None:
    """Commands retry for about 11 s by default; the outage here lasts 15 s."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "proj.py").write_text(textwrap.dedent(TASKS))
    url = server.url(7)
    (project / "celeriac.toml").write_text(
        f'broker = "{url}"\nresult_store = "{url}"\n[redis]\nkey_prefix = "dead-broker:"\n'
        "[worker]\npoll_timeout = 0.2\n"
    )
    worker = _start_worker(project)

    def client() -> Celeriac:
        return Celeriac(
            "check", broker=url, result_store=url, env={}, config=False, redis={"key_prefix": "dead-broker:"}
        )

    try:
        worker.wait_ready(timeout=30)
        app = client()
        try:
            assert app.send_task("proj.add", (1, 1)).get(timeout=20) == 2
        finally:
            app.close()
        server.stop()
        outage = time.monotonic()
        wait_for(lambda: time.monotonic() - outage > 15 or worker.proc.poll() is not None, timeout=20)
        assert worker.proc.poll() is None, worker.output()
        server.start()
        app = client()
        try:
            assert app.send_task("proj.add", (2, 2)).get(timeout=60) == 4
        finally:
            app.close()
        worker.signal(15)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    assert SECRET not in worker.output()
    assert "Traceback" not in worker.output(), worker.output()  # one line per failure, no stack


def test_cli_commands_against_an_unreachable_rabbitmq_print_one_error_line(
    tmp_path: Path, rabbit_vhost: str, rabbit_proxy: CuttableProxy
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "proj.py").write_text(textwrap.dedent(TASKS))
    (project / "celeriac.toml").write_text(
        f'broker = "{_through(rabbit_vhost, rabbit_proxy)}"\nresult_store = ""\npublish_timeout = 2.0\n'
        "[amqp]\noperation_timeout = 2.0\n"
    )
    rabbit_proxy.cut()
    for args in (("call", "proj.add", "--args", "[1, 2]"), ("status",)):
        ran = _cli(project, *args)
        assert ran.returncode == 2, ran
        assert ran.stderr.startswith("error: ") and ran.stderr.count("\n") == 1, ran.stderr
        assert "Traceback" not in ran.stderr and "guest:guest" not in ran.stderr + ran.stdout
        assert "amqp://guest:***@127.0.0.1" in ran.stderr or args == ("status",), ran.stderr
