"""``celeriac call-url`` against a worker process started by the CLI, on a SQLite broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from celeriac.testing import write_project

if TYPE_CHECKING:
    from conftest import Server

PROJECT = 'from celeriac import Celeriac\n\napp = Celeriac("proj")\n'
CONFIG = """\
broker = "sqlite:///broker.sqlite3"
[worker]
poll_timeout = 0.1
[tasks."celeriac.webhook"]
retry_backoff = 0.05
retry_jitter = false
"""


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = str(project)
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, PROJECT, CONFIG)


@pytest.fixture
def worker_process(project: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = project / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-P", "threads", "-c", "2"],
            cwd=project,
            env=_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while "ready: consuming" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def call_url(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", "call-url", *args, "--wait", "--wait-timeout", "20"],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=40,
    )


def test_call_url_through_a_cli_worker(
    project: Path, worker_process: subprocess.Popen[bytes], server: Server
) -> None:
    url = server.route("/cli", server.reply(status=500), server.reply(body=b"from the server"))
    done = call_url(project, url, "--json", '{"x": 1}', "--header", "X-From: cli")
    assert done.returncode == 0, done.stderr
    task_id, _, rest = done.stdout.partition("\n")
    response = json.loads(rest)
    assert response["status_code"] == 200
    assert response["body"] == "from the server"
    _, second = server.requests_to("/cli")  # the first got a 500 and was retried
    assert json.loads(second.body) == {"x": 1}
    assert second.headers["x-from"] == "cli"
    assert second.headers["x-celeriac-task-id"] == task_id

    missing = server.route("/gone", server.reply(status=410, body=b"gone for good"))
    failed = call_url(project, missing, "-X", "DELETE")
    assert failed.returncode == 1
    assert "WebhookHTTPError: DELETE" in failed.stderr
    assert "410" in failed.stderr
    assert "gone for good" in failed.stdout


def test_call_url_refuses_other_schemes(project: Path) -> None:
    done = call_url(project, "ftp://127.0.0.1/x")
    assert done.returncode != 0
    assert "scheme 'ftp' is not http or https" in done.stdout + done.stderr
