"""Worker processes on a real SQLite file: started by the CLI, cleaned up by PID, bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import project_app
from celeriac.testing import write_project

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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with a tasks module and a celeriac.toml on its own SQLite file."""
    return write_project(
        tmp_path,
        TASKS,
        'broker = "sqlite:///broker.sqlite3"\nvisibility_timeout = 2.0\n[worker]\npoll_timeout = 0.2\n',
    )


@pytest.fixture
def client(project: Path) -> Iterator[Celeriac]:
    """The producer side: the project's app, imported in the test process."""
    with project_app(project) as app:
        yield app


@pytest.fixture
def start_worker(project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``celeriac worker`` processes in the project; each is killed by its PID afterwards."""
    with process_group(project) as processes:
        yield lambda *args: processes.start(celeriac_command("proj", "worker", *args))


def run_cli(
    project: Path,
    *args: str,
    timeout: float = 30.0,
    extra_path: Path | None = None,
    input: str | None = None,  # noqa: A002 - subprocess.run's name for it
    **env_vars: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``celeriac ARGS`` in the project, with no CELERIAC_* from this environment but
    ``env_vars``; ``input`` is typed at its prompts."""
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
        input=input,
    )
