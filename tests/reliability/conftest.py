"""Worker processes with real child processes, on SQLite: started by the CLI, cleaned up by PID."""

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
from celeriac.testing import project_app
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for  # noqa: F401 - kept importable from here for the suite's modules
from celeriac.testing import write_project

TASKS = """
import asyncio, os, time
from celeriac import Celeriac
from celeriac import SoftTimeLimitExceededError

app = Celeriac("proj")
BALLAST = []


def mark(marker):
    if marker:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\\n")


@app.task
def pid():
    return os.getpid()


@app.task
def slow(seconds, marker=None):
    mark(marker)
    time.sleep(seconds)
    return os.getpid()


@app.task
def exit_now():
    os._exit(1)


@app.task(time_limit=0.5)
def hang():
    time.sleep(60)


@app.task(soft_time_limit=0.3)
def cleanup():
    try:
        time.sleep(10)
    except SoftTimeLimitExceededError:
        return "cleaned up"
    return "not interrupted"


@app.task
def allocate(mib):
    BALLAST.append(bytearray(mib * 1024 * 1024))
    return os.getpid()


@app.task
def add(x, y):
    return x + y


@app.task
async def nap(seconds):
    await asyncio.sleep(seconds)
    return seconds


@app.task(acks_late=True, reject_on_worker_lost=True)
def flaky(marker):
    mark(marker)
    with open(marker) as f:
        if len(f.read().split()) == 1:
            os._exit(1)
    return "second attempt"
"""
CONFIG = """
broker = "sqlite:///broker.sqlite3"
visibility_timeout = 5.0
[worker]
poll_timeout = 0.2
"""


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] not in ("Z", "X"):
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.seen: set[int] = set()  # every descendant noticed, to clean up by PID

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> list[int]:
        found = children_of(self.proc.pid)
        self.seen.update(found)
        return found

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready: consuming" in self.output():
                self.descendants()
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
    return write_project(tmp_path, TASKS, CONFIG)


@pytest.fixture
def client(project: Path) -> Iterator[Celeriac]:
    """The producer side: the project's app, imported in the test process."""
    with project_app(project) as app:
        yield app


@pytest.fixture
def start_worker(project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``celeriac -A proj worker -P POOL ARGS``; ``prefork`` adds a [prefork] section.

    ``launcher`` is the module run with ``python -m`` (``celeriac_gevent`` patches first);
    ``session`` starts it in a session of its own, so a signal can reach its whole group.
    """
    started: list[WorkerProcess] = []

    def start(
        *args: str,
        pool: str = "prefork",
        prefork: str = "",
        launcher: str = "celeriac",
        session: bool = False,
    ) -> WorkerProcess:
        if prefork:
            (project / "celeriac.toml").write_text(CONFIG + "[prefork]\n" + textwrap.dedent(prefork))
        log = project / f"worker-{len(started)}.log"
        command = [sys.executable, "-m", launcher, "-A", "proj", "worker", "-P", pool, *args]
        # Started as the kernel's WorkerProcess does; this suite's own class adds the pool's
        # children, which it must see to kill them by PID.
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=project,
                env=subprocess_env(project),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=session,
            )
        worker = WorkerProcess(proc, log)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.descendants()
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(timeout=10)
        for pid in worker.seen:
            if alive(pid) and is_ours(pid):
                os.kill(pid, signal.SIGKILL)


def is_ours(pid: int) -> bool:
    """A child or zygote of ours, not a process that reused the pid meanwhile."""
    try:
        return b"celeriac" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
