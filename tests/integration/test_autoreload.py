"""``celeriac worker --autoreload``: a change to the app's source restarts the worker on the new code."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import WorkerProcess
from .conftest import run_cli

pytestmark = pytest.mark.integration


def call_add(project: Path) -> str:
    args = ("call", "proj.add", "--args", "[20, 22]", "--wait", "--timeout", "20")
    sent = run_cli(project, "-A", "proj", *args)
    assert sent.returncode == 0, sent.stderr
    return sent.stdout.split()[1]


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_source_change_restarts_the_worker_on_the_new_code(
    project: Path, start_worker: Callable[..., WorkerProcess], pool: str
) -> None:
    worker = start_worker("--autoreload", "-P", pool, "-c", "1")
    assert call_add(project) == "42"
    source = project / "proj.py"
    source.write_text(source.read_text().replace("return x + y", "return x + y + 1"))
    deadline = time.monotonic() + 30
    while worker.output().count("ready: consuming") < 2:  # the restarted worker is consuming
        assert worker.proc.poll() is None, worker.output()
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.1)
    assert "autoreload: " in worker.output() and "proj.py changed; restarting the worker" in worker.output()
    assert call_add(project) == "43"
