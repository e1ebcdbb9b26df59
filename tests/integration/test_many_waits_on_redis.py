"""Hundreds of waiting tasks at once on the pools made for them, in worker processes on Redis.

Each worker runs ``-c 500`` against a Redis namespace of its own and names its connections
(``client_name``), so the test can count them with ``CLIENT LIST``.
"""

from __future__ import annotations

import secrets
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from celeriac import Celeriac
from celeriac import states
from celeriac.testing import process_group
from celeriac.testing import subprocess_env
from celeriac_redis import testing as redis_testing

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(90)]

TASKS = """
import asyncio
import time

from celeriac import Celeriac

app = Celeriac("proj")


@app.task
async def wait_async(seconds):
    await asyncio.sleep(seconds)
    return seconds


@app.task
def wait(seconds):
    time.sleep(seconds)  # cooperative on the gevent pool (patched)
    return seconds
"""
TASKS_SENT = 300
WAIT = 0.5


@pytest.fixture
def url() -> str:
    return redis_testing.require_redis(redis_testing.server_url())


@pytest.fixture
def project(tmp_path: Path, url: str) -> Iterator[tuple[Path, str]]:
    """A project on ``url`` under a key prefix of its own; yields it and the connection name."""
    name = f"celeriac-waits-{secrets.token_hex(4)}"
    with redis_testing.private_prefix(url, name=name) as prefix:
        (tmp_path / "proj.py").write_text(textwrap.dedent(TASKS))
        (tmp_path / "celeriac.toml").write_text(
            f'broker = "{url}?client_name={name}"\n'
            f'[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
            "[worker]\npoll_timeout = 0.2\n"
        )
        yield tmp_path, name


@pytest.mark.parametrize(
    ("pool", "task"),
    [("asyncio", "proj.wait_async"), pytest.param("gevent", "proj.wait", id="gevent")],
)
def test_hundreds_of_waits_run_at_once_on_a_few_connections(
    project: tuple[Path, str], url: str, monkeypatch: pytest.MonkeyPatch, pool: str, task: str
) -> None:
    """300 tasks queued before the worker starts, each waiting 0.5 s: they finish in about
    0.5 s together, and their results go through a few connections (stored in batches),
    not one connection per task in flight."""
    if pool == "gevent":
        pytest.importorskip("celeriac_gevent")
    directory, name = project
    monkeypatch.chdir(directory)
    monkeypatch.syspath_prepend(str(directory))
    sys.modules.pop("proj", None)
    import proj

    client: Celeriac = proj.app
    server = redis.Redis.from_url(url)
    try:
        results = [client.send_task(task, (WAIT,)) for _ in range(TASKS_SENT)]
        launcher = "celeriac_gevent" if pool == "gevent" else "celeriac"
        command = [sys.executable, "-m", launcher, "-A", "proj", "worker", "-P", pool, "-c", "500"]
        with process_group(directory, subprocess_env(directory)) as processes:
            worker = processes.start(command)
            first = time.monotonic()
            results[0].get(timeout=20)
            assert all(r.get(timeout=20) == WAIT for r in results), worker.output()
            # About WAIT after the first one: every wait ran at the same time.
            assert time.monotonic() - first < WAIT + 2.0
            connections = [c for c in server.client_list() if c.get("name") == name]
            assert len(connections) <= 40, f"{len(connections)} connections for {TASKS_SENT} tasks"
            assert {r.state for r in results} == {states.SUCCESS}
    finally:
        server.close()
        client.close()
        sys.modules.pop("proj", None)
