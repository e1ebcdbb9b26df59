"""``celeriac beat`` and ``celeriac worker -B`` as a user runs them, on a real SQLite file."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.testing import wait_for
from celeriac.testing import write_project

from .conftest import beat_plugins
from .conftest import drain
from .conftest import subprocess_env

pytestmark = [pytest.mark.integration]

TASKS = """
from celeriac import Celeriac

app = Celeriac("proj")

@app.task
def tick():
    return "tick"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path,
        TASKS,
        'broker = "sqlite:///broker.sqlite3"\n[worker]\npoll_timeout = 0.2\n'
        '[beat.schedule.tick]\ntask = "proj.tick"\nevery = "1s"\n',
    )


def _start(project: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = project / f"{args[0]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", *args],
            cwd=project,
            env=subprocess_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise


def test_beat_command_sends_and_stops_on_sigterm(project: Path) -> None:
    proc, log = _start(
        project, "beat", "--schedule-store", "sqlite:///beat.sqlite3", "-l", "INFO", "--max-interval", "1"
    )
    try:
        wait_for(lambda: log.read_text().count("sent proj.tick") >= 2, 15, "two runs")
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text()
    assert (project / "beat.sqlite3").exists()
    client = Celeriac(
        "client", broker=f"sqlite:///{project}/broker.sqlite3", plugins=beat_plugins(), env={}, config=False
    )
    try:
        assert len(drain(client)) >= 2
    finally:
        client.close()


def test_beat_command_names_a_broken_entry(project: Path) -> None:
    (project / "celeriac.toml").write_text(
        '[beat.schedule.nightly]\ntask = "proj.tick"\ncron = "0 25 * * *"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", "beat"],
        cwd=project,
        env=subprocess_env(project),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "beat entry 'nightly'" in result.stderr and "celeriac.toml" in result.stderr


def test_worker_with_embedded_beat(project: Path) -> None:
    proc, log = _start(project, "worker", "-B", "-c", "1")
    try:
        wait_for(lambda: log.read_text().count("sent proj.tick") >= 2, 20, "two runs sent")
        ids = re.findall(r"sent proj\.tick\[([^\]]+)\]", log.read_text())[:2]
        client = Celeriac(
            "client",
            broker=f"sqlite:///{project}/broker.sqlite3",
            plugins=beat_plugins(),
            env={},
            config=False,
        )
        try:
            assert [client.AsyncResult(task_id).get(timeout=10) for task_id in ids] == ["tick", "tick"]
        finally:
            client.close()
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text()


def test_sighup_reloads_the_schedule(project: Path) -> None:
    proc, log = _start(project, "beat")
    try:
        wait_for(lambda: "sent proj.tick" in log.read_text(), 15, "a first run")
        (project / "celeriac.toml").write_text(
            'broker = "sqlite:///broker.sqlite3"\n[beat.schedule.other]\ntask = "proj.other"\nevery = "1s"\n'
        )
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "beat schedule reloaded: other" in log.read_text(), 10, "the reload")
        wait_for(lambda: "sent proj.other" in log.read_text(), 10, "a run of the new entry")
    finally:
        assert _stop(proc) == 0, log.read_text()
