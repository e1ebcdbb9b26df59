"""``celeriac events`` as users run it: against a CLI worker on a SQLite file, and in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac import Celeriac
from celeriac._cli.main import main
from celeriac.testing import worker_thread
from celeriac.testing import write_project

PROJECT = """
from celeriac import Celeriac

app = Celeriac("proj")

@app.task
def add(x, y):
    return x + y

@app.task
def boom():
    raise ValueError("boom")
"""


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = str(project)
    env["COLUMNS"] = "200"
    return env


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{path.read_text(errors='replace')}")
        assert time.monotonic() < deadline, f"{text!r} not seen:\n{path.read_text(errors='replace')}"
        time.sleep(0.05)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path,
        PROJECT,
        'broker = "sqlite:///broker.sqlite3"\n[worker]\npoll_timeout = 0.2\n[events]\nbatch_interval = 0.2\n',
    )


@pytest.fixture
def cli_worker(project: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celeriac -A proj worker -E`` in its own process, killed by PID afterwards."""
    log = project / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-E", "-c", "2", "-n", "cli@test"],
            cwd=project,
            env=_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(log, "ready: consuming", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
def test_events_dump_against_a_cli_worker(project: Path, cli_worker: subprocess.Popen[bytes]) -> None:
    errors = project / "events.err"
    with errors.open("wb") as err:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "events", "--dump", "--duration", "3"],
            cwd=project,
            env=_env(project),
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        _wait_for(errors, "listening for events", watcher)
        client = Celeriac(broker=f"sqlite:///{project / 'broker.sqlite3'}", env={}, config=False)
        ok = client.send_task("proj.add", (20, 22))
        bad = client.send_task("proj.boom")
        assert ok.get(timeout=20) == 42
        assert bad.get(timeout=20, propagate=False) is not None
        client.close()
        out, _ = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, errors.read_text()
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert all(e["hostname"] == "cli@test" for e in events)
    by_task = {(e["type"], e.get("uuid")) for e in events}
    for type_ in ("task-received", "task-started", "task-succeeded"):
        assert (type_, ok.id) in by_task, by_task
    assert ("task-failed", bad.id) in by_task
    received = next(e for e in events if e["type"] == "task-received" and e["uuid"] == ok.id)
    assert (received["name"], received["args"]) == ("proj.add", "(20, 22)")
    assert next(e for e in events if e["type"] == "task-succeeded")["runtime"] >= 0


def test_live_view_shows_workers_and_tasks(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    for name in [k for k in os.environ if k.startswith("CELERIAC_")]:
        monkeypatch.delenv(name)
    sys.modules.pop("proj", None)
    import proj

    app: Celeriac = proj.app
    try:
        with worker_thread(app, send_events=True, hostname="live@test"):
            runner = CliRunner()
            add = app.tasks["proj.add"]

            # The view subscribes when it starts: send the task a moment later, from a thread.
            import threading

            sender = threading.Timer(0.8, lambda: add.delay(1, 2))
            sender.start()
            args = ["-A", "proj", "events", "--duration", "2.5"]
            result = runner.invoke(main, args, env={"COLUMNS": "200"})
            sender.join()
    finally:
        app.close()
        sys.modules.pop("proj", None)
    assert result.exit_code == 0, result.output
    assert "Workers" in result.output and "live@test" in result.output
    assert "Recent tasks" in result.output and "proj.add" in result.output
    assert "SUCCESS" in result.output


def test_a_broker_without_fan_out_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plainproj.py").write_text(
        textwrap.dedent(
            """
            from celeriac import Celeriac
            from celeriac.plugin import TransportSpec, hookimpl
            from celeriac.testing import MemoryTransport

            class Plain:
                def __init__(self):
                    self.inner = MemoryTransport()
                def close(self):
                    pass

            class PlainPlugin:
                @hookimpl
                def celeriac_add_transports(self):
                    return [TransportSpec(schemes=("plain",), factory=lambda url, config: Plain())]

            app = Celeriac("plainproj", broker="plain://", result_store="", plugins=[PlainPlugin()],
                           env={}, config=False)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("plainproj", None)
    result = CliRunner().invoke(main, ["-A", "plainproj", "events", "--dump"])
    sys.modules.pop("plainproj", None)
    assert result.exit_code == 2
    assert "the plain broker has no broadcast channel, so it carries no events" in result.output
