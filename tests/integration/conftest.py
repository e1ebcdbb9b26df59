"""Worker processes on a real SQLite file: started by the CLI, cleaned up by PID, bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac

TASKS = """
import os, time
from pathlib import Path
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
def noop():
    return None
"""


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready: consuming" in self.output():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.output()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with a tasks module and a celeriac.toml on its own SQLite file."""
    (tmp_path / "proj.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "celeriac.toml").write_text(
        'broker = "sqlite:///broker.sqlite3"\nvisibility_timeout = 2.0\n[worker]\npoll_timeout = 0.2\n'
    )
    return tmp_path


@pytest.fixture
def client(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celeriac]:
    """The producer side: the project's app, imported in the test process."""
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    sys.modules.pop("proj", None)
    import proj

    yield proj.app
    proj.app.close()
    sys.modules.pop("proj", None)


@pytest.fixture
def start_worker(project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        log = project / f"worker-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env["PYTHONPATH"] = str(project)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celeriac", "-A", "proj", "worker", *args],
                cwd=project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(timeout=10)


def run_cli(
    project: Path, *args: str, timeout: float = 30.0, extra_path: Path | None = None, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    """Run ``celeriac ARGS`` in the project, with no CELERIAC_* from this environment but ``env_vars``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (project, extra_path) if p is not None)
    env["COLUMNS"] = "200"
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, "-m", "celeriac", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
