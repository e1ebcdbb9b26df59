"""Fixtures for tests against a real Redis: the server from ``REDIS_URL``, keys under a prefix per test.

Redis defaults to ``redis://127.0.0.1:6379/15``. When it cannot be reached the tests that
need it are skipped with the reason, except under ``CI=true``, where they fail: CI must not
pass by testing nothing. Each test gets its own key prefix and deletes only its own keys
afterwards; nothing is flushed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import textwrap
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis

from celeriac.plugin import Config
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import project_app
from celeriac.testing import wait_for
from celeriac_redis import RedisConfig
from celeriac_redis.testing import private_prefix
from celeriac_redis.testing import require_redis
from celeriac_redis.testing import server_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis(server_url())


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and only they."""
    with private_prefix(redis_url) as value:
        yield value


def make_config(prefix: str, **settings: Any) -> Config:
    names = attrs.fields_dict(RedisConfig)
    redis_settings = {k: settings.pop(k) for k in list(settings) if k in names}
    section = RedisConfig(key_prefix=prefix, result_key_prefix=prefix, **redis_settings)
    return Config(sections={"redis": section}, **settings)


# --- processes: free ports, cleanup by PID, bounded waits --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of this test's own, durable across restarts (AOF, fsync at every write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
                *("--logfile", str(self.directory / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), 10, "redis-server start")
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


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
def die(marker):
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\\n")
    os.kill(os.getpid(), 9)

@app.task
def noop():
    return None

@app.task
def greet(name, punctuation="!"):
    return f"hello {name}{punctuation}"

@app.task
def fail():
    raise ValueError("broken on purpose")

@app.task
def total(values):
    return sum(values)

@app.task
def store_modules_loaded():
    import sys
    return "redis" in sys.modules
"""


def write_project(
    directory: Path, url: str, prefix: str, visibility_timeout: float = 2.0, layout: str = "streams"
) -> None:
    (directory / "proj.py").write_text(textwrap.dedent(TASKS))
    (directory / "celeriac.toml").write_text(
        f'broker = "{url}"\nvisibility_timeout = {visibility_timeout}\n'
        '[plugins]\nenable = ["redis", "json", "threads"]\n'
        f"[worker]\npoll_timeout = 0.2\n"
        f'[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\nreclaim_interval = 0.2\n'
        f'layout = "{layout}"\nkombu_global_keyprefix = "{prefix}"\n'
    )


@pytest.fixture
def project(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    """A project directory with a tasks module and a celeriac.toml on this test's keys."""
    write_project(tmp_path, redis_url, prefix)
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[Any]:
    """The producer side: the project's app, imported in the test process."""
    with project_app(project) as app:
        yield app


@pytest.fixture
def start_worker(project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    with process_group(project) as processes:

        def start(*args: str, ready: bool = True) -> WorkerProcess:
            command = celeriac_command("proj", "worker", *args)
            return processes.start(command, ready="ready: consuming" if ready else None)

        yield start
