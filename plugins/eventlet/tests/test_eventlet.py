"""The eventlet pool in real worker processes on Redis (patching cannot happen inside the test process).

Each worker is ``python -m celeriac_eventlet -A proj worker -P eventlet`` with its own Redis key
prefix, stopped by its PID and bounded in time. The tasks do real network I/O: HTTP requests to
a server this test runs on loopback, which also tells the test when a request is in flight.
"""

from __future__ import annotations

import http.server
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import SoftTimeLimitExceededError
from celeriac import TimeLimitExceededError
from celeriac import states
from celeriac.testing import ProcessGroup
from celeriac.testing import process_group
from celeriac.testing import project_app
from celeriac.testing import write_project
from celeriac_redis import testing as redis_testing

pytest.importorskip("eventlet")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

TASKS = """
import time
import urllib.request
from celeriac import Celeriac
from celeriac import SoftTimeLimitExceededError

app = Celeriac("proj")


@app.task
def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


@app.task(soft_time_limit=0.3)
def careful():
    try:
        time.sleep(10)
    except SoftTimeLimitExceededError:
        time.sleep(0.05)
        return "cleaned up"
    return "not interrupted"


@app.task(soft_time_limit=0.3)
def careless():
    time.sleep(10)


@app.task(time_limit=0.3)
def stuck():
    try:
        time.sleep(10)
    except Exception:
        time.sleep(10)  # a task cannot catch its hard limit
"""


class Server(http.server.ThreadingHTTPServer):
    """Answers ``GET /wait/NAME`` after ``/release/NAME`` was asked for (or 1 s for ``/sleep``),
    counting the requests by path, so a test knows which tasks are in flight."""

    daemon_threads = True
    request_queue_size = 512  # a hundred tasks connect at once

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.changed = threading.Condition()
        self.released: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def wait_hits(self, path: str, count: int, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.hits.get(path, 0) >= count, timeout), self.hits

    def release(self, name: str) -> None:
        with self.changed:
            self.released.add(name)
            self.changed.notify_all()


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        server = self.server
        with server.changed:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            server.changed.notify_all()
        if self.path == "/sleep":
            time.sleep(1)
        elif self.path.startswith("/wait/"):
            name = self.path.removeprefix("/wait/")
            with server.changed:
                server.changed.wait_for(lambda: name in server.released, timeout=30)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet."""


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    url = redis_testing.require_redis(redis_testing.server_url())
    with redis_testing.private_prefix(url, name="celeriac-eventlet-test") as prefix:
        yield write_project(
            tmp_path,
            TASKS,
            f'broker = "{url}"\n'
            f'[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
            "[worker]\npoll_timeout = 0.2\n",
        )


@pytest.fixture
def client(project: Path) -> Iterator[Celeriac]:
    with project_app(project) as app:
        yield app


@pytest.fixture
def workers(project: Path) -> Iterator[ProcessGroup]:
    with process_group(project) as group:
        yield group


def eventlet_worker(*args: str, launcher: str = "celeriac_eventlet") -> list[str]:
    return [sys.executable, "-m", launcher, "-A", "proj", "worker", "-P", "eventlet", *args]


def test_hundred_http_requests_interleave(client: Celeriac, workers: ProcessGroup, server: Server) -> None:
    workers.start(eventlet_worker("-c", "200"))
    assert client.send_task("proj.fetch", (f"{server.url}/warm-up",)).get(timeout=10) == "/warm-up"
    started = time.monotonic()
    results = [client.send_task("proj.fetch", (f"{server.url}/sleep",)) for _ in range(100)]
    assert all(r.get(timeout=30) == "/sleep" for r in results)
    # Each request takes 1 s at the server: one after another would be 100 s.
    assert time.monotonic() - started < 10
    assert server.hits["/sleep"] == 100


def test_time_limits(client: Celeriac, workers: ProcessGroup) -> None:
    workers.start(eventlet_worker("-c", "10"))
    assert client.send_task("proj.careful").get(timeout=10) == "cleaned up"
    with pytest.raises(SoftTimeLimitExceededError):
        client.send_task("proj.careless").get(timeout=10)
    began = time.monotonic()
    with pytest.raises(TimeLimitExceededError):
        client.send_task("proj.stuck").get(timeout=10)
    assert time.monotonic() - began < 5


def test_warm_shutdown_finishes_the_running_task(
    client: Celeriac, workers: ProcessGroup, server: Server
) -> None:
    worker = workers.start(eventlet_worker("-c", "10"))
    running = client.send_task("proj.fetch", (f"{server.url}/wait/warm",))
    server.wait_hits("/wait/warm", 1)
    worker.signal(signal.SIGTERM)
    worker.wait_ready(line="shutting down (warm)")
    server.release("warm")
    assert worker.wait(timeout=20) == 0
    assert running.state == states.SUCCESS
    assert running.get(timeout=1) == "/wait/warm"


def test_cold_shutdown_gives_the_running_task_back(
    client: Celeriac, workers: ProcessGroup, server: Server
) -> None:
    worker = workers.start(eventlet_worker("-c", "10"))
    running = client.send_task("proj.fetch", (f"{server.url}/wait/cold",))
    server.wait_hits("/wait/cold", 1)
    worker.signal(signal.SIGTERM)
    worker.wait_ready(line="shutting down (warm)")
    worker.signal(signal.SIGTERM)
    worker.wait(timeout=20)
    assert "cold shutdown, requeueing unfinished tasks" in worker.output()
    assert running.state == states.PENDING
    # Given back, not lost: the next worker runs it again.
    server.release("cold")
    workers.start(eventlet_worker("-c", "10"))
    assert running.get(timeout=20) == "/wait/cold"
    assert server.hits["/wait/cold"] == 2


def test_refuses_to_run_unpatched(project: Path, workers: ProcessGroup) -> None:
    worker = workers.start(eventlet_worker(launcher="celeriac"), ready=None)
    assert worker.wait(timeout=30) != 0
    assert "celeriac-eventlet" in worker.output()
