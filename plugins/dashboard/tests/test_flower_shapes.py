"""The API against a real Flower 2.2 beside a real Celery worker, on one Redis broker.

A Celery worker (events on) runs the tasks; Flower and ``celeriac dashboard`` (from the
configuration alone) both watch it. The same requests to both must give the same JSON
shapes (keys, types) and status codes: a script written for Flower works unchanged.
"""

from __future__ import annotations

import json
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import ProcessGroup
from celeriac.testing import free_port
from celeriac.testing import subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CELERY_APP = """
import os
from celery import Celery

app = Celery("celery_proj", broker=os.environ["BROKER"], backend=os.environ["BROKER"], set_as_current=False)
app.conf.broker_transport_options = {{"global_keyprefix": {prefix!r}}}
app.conf.result_backend_transport_options = {{"global_keyprefix": {prefix!r}}}
app.conf.worker_send_task_events = True
# Secrets a Celery worker's `inspect conf` reports as they are (its own censoring looks at
# key names only, so URL passwords under other names pass; Flower shows them).
app.conf.audit_url = "postgresql://audit:pw-SEKRIT-4@127.0.0.1/audit"
app.conf.sentry_dsn = "https://public:pw-SEKRIT-5@sentry.invalid/1"

@app.task(name="proj.add")
def add(x, y):
    return x + y
"""


def _get(base: str, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(base + path, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(base: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body else {}
    request = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def shape(value: Any) -> Any:
    """Keys and value types, recursively; lists by the shape of their first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture
def side_by_side(tmp_path: Path, poll: Any) -> Iterator[tuple[str, str, Any]]:
    from celeriac_redis import testing

    url = testing.require_redis(testing.server_url())
    with testing.private_prefix(url) as prefix:
        (tmp_path / "celery_proj.py").write_text(textwrap.dedent(CELERY_APP.format(prefix=prefix)))
        port_flower, port_ours = free_port(), free_port()
        (tmp_path / "celeriac.toml").write_text(
            f'broker = "{url}"\n[redis]\nlayout = "kombu"\nkey_prefix = "{prefix}"\n'
            f'result_key_prefix = "{prefix}"\nkombu_global_keyprefix = "{prefix}"\n'
            f'[dashboard]\nport = {port_ours}\nhistory = ""\nlive_interval = 0.1\ninspect_timeout = 2.0\n'
        )
        env = subprocess_env(
            tmp_path, drop=("CELERIAC_", "CELERY_"), BROKER=url, FLOWER_UNAUTHENTICATED_API="true"
        )
        group = ProcessGroup(tmp_path, env)
        try:
            python = sys.executable
            group.start(
                [python, "-m", "celery", "-A", "celery_proj", "worker", "-P", "solo", "-n", "celery@shapes",
                 "--without-mingle", "--without-gossip", "-l", "INFO"],
                ready="ready.", log="celery", timeout=60,
            )  # fmt: skip
            group.start(
                [python, "-m", "celery", "-A", "celery_proj", "flower", f"--port={port_flower}",
                 "--address=127.0.0.1", "--inspect_timeout=2000"],
                ready=None, log="flower",
            )  # fmt: skip
            group.start([python, "-m", "celeriac", "dashboard"], ready="dashboard on http", log="dashboard")
            flower, ours = f"http://127.0.0.1:{port_flower}", f"http://127.0.0.1:{port_ours}"
            for base in (flower, ours):
                poll(lambda b=base: _reachable(b), 30, f"{base} up")
            yield flower, ours, group
        finally:
            group.kill()


def _reachable(base: str) -> bool:
    try:
        return _get(base, "/api/workers?status=true")[0] == 200
    except OSError:
        return False


def test_flower_and_the_dashboard_answer_alike(side_by_side: tuple[str, str, Any], poll: Any) -> None:
    flower, ours, _ = side_by_side
    for base in (flower, ours):
        poll(
            lambda b=base: _get(b, "/api/workers?status=true")[1].get("celery@shapes"), 30, f"{base}: worker"
        )
    _, sent = _post(flower, "/api/task/send-task/proj.add", b'{"args": [1, 2]}')
    task_id = sent["task-id"]
    for base in (flower, ours):
        poll(lambda b=base: _state(b, task_id) == "SUCCESS", 30, f"{base}: the task's success")

    compared = [
        "/api/workers?status=true",
        f"/api/task/info/{task_id}",
        "/api/tasks?limit=5",
        "/api/tasks?state=SUCCESS&taskname=proj.add",
        "/api/tasks?sort_by=-received&limit=1",
        "/api/task/types",
        "/api/queues/length",
        "/api/task/info/no-such-task",
        "/api/tasks?sort_by=bogus",
    ]
    for path in compared:
        theirs, mine = _get(flower, path), _get(ours, path)
        assert theirs[0] == mine[0], (path, theirs, mine)
        if theirs[0] == 200:
            assert shape(mine[1]) == shape(theirs[1]) or _same_keys(mine[1], theirs[1]), (path, theirs, mine)

    theirs = _get(flower, "/api/workers?refresh=1")[1]["celery@shapes"]
    mine = _get(ours, "/api/workers?refresh=1")[1]["celery@shapes"]
    assert set(mine) == set(theirs), (sorted(theirs), sorted(mine))
    assert set(mine["stats"]) == set(theirs["stats"])
    # The Celery worker's configuration holds secrets: Flower shows them, the dashboard masks
    # them, in the API and on the worker's page.
    assert theirs["conf"]["audit_url"] == "postgresql://audit:pw-SEKRIT-4@127.0.0.1/audit"
    assert mine["conf"]["audit_url"] == "postgresql://audit:***@127.0.0.1/audit"
    assert mine["conf"]["sentry_dsn"] == "https://public:***@sentry.invalid/1"
    with urllib.request.urlopen(ours + "/worker/celery@shapes", timeout=15) as response:
        page = response.read().decode()
    assert "audit_url" in page
    assert "SEKRIT" not in json.dumps(mine) + page

    # A solo pool cannot grow: both refuse with 403 and a reason.
    theirs_grow, mine_grow = (
        _post(flower, "/api/worker/pool/grow/celery@shapes?n=1"),
        _post(ours, "/api/worker/pool/grow/celery@shapes?n=1"),
    )
    assert theirs_grow[0] == mine_grow[0], (theirs_grow, mine_grow)
    assert (
        _post(flower, "/api/worker/pool/grow/nobody")[0]
        == _post(ours, "/api/worker/pool/grow/nobody")[0]
        == 404
    )
    revoked = _post(ours, f"/api/task/revoke/{task_id}")
    assert revoked == _post(flower, f"/api/task/revoke/{task_id}")


def _state(base: str, task_id: str) -> str | None:
    status, body = _get(base, f"/api/task/info/{task_id}")
    return body["state"] if status == 200 else None


def _same_keys(mine: Any, theirs: Any) -> bool:
    """Task maps: the same task ids, each with Flower's keys (values may be None on one side)."""
    if not (isinstance(mine, dict) and isinstance(theirs, dict)) or set(mine) != set(theirs):
        return False
    return all(not isinstance(theirs[key], dict) or set(mine[key]) == set(theirs[key]) for key in theirs)
