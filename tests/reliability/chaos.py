"""The fault-injection harness: a project on one transport, workers in sessions of their own,
tasks that note every run in an append-only file, and the figures of one run.

``CHAOS_TASKS`` sets how many tasks a scenario sends (small by default, so that ``make test``
stays quick; ``make chaos`` sends thousands); ``CHAOS_REPORT`` names a file each scenario
appends its figures to as a JSON line (``tools/chaos_table.py`` prints them). Neither starts
with ``CELERIAC_``, which the app would read as configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import attrs

from celeriac.testing import free_port
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for

from .conftest import alive
from .conftest import children_of

TASKS = """
import os, time
from celeriac import Celeriac

app = Celeriac("chaosproj")
RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.txt")


def note(n):
    # One write(2) of a short line to a file opened O_APPEND: whole lines, whatever is killed.
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n} {os.getpid()} {time.time():.3f}\\n".encode())
    finally:
        os.close(fd)


@app.task(acks_late=True, reject_on_worker_lost=True)
def work(n, seconds=0.0):
    note(n)
    if seconds:
        time.sleep(seconds)
    return n


@app.task(acks_late=True, reject_on_worker_lost=True)
def poison():
    note(-1)
    os._exit(1)
"""


def task_count(default: int) -> int:
    """How many tasks a scenario sends: ``CHAOS_TASKS`` or the short default."""
    return int(os.environ.get("CHAOS_TASKS") or default)


@attrs.define
class Worker:
    """A worker process in a session of its own (its process group is its pid)."""

    proc: subprocess.Popen[bytes]
    log: Path
    seen: set[int] = attrs.field(factory=set)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def descendants(self) -> list[int]:
        found = children_of(self.pid)
        self.seen.update(found)
        return found

    def running(self) -> bool:
        return self.proc.poll() is None


@attrs.define
class Project:
    """A chaos project on one transport: its directory, its workers, its figures."""

    directory: Path
    transport: str
    config: str
    private: str = ""  # the key prefix or vhost URL of its own
    workers: list[Worker] = attrs.field(factory=list)

    @property
    def runs_file(self) -> Path:
        return self.directory / "runs.txt"

    def write_config(self, config: str | None = None) -> None:
        (self.directory / "celeriac.toml").write_text(config if config is not None else self.config)

    def start(self, *args: str, ready: bool = True, timeout: float = 60.0) -> Worker:
        log = self.directory / f"worker-{len(self.workers)}.log"
        command = [sys.executable, "-m", "celeriac", "-A", "chaosproj", "worker", *args]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=self.directory,
                env=subprocess_env(self.directory),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(proc, log)
        self.workers.append(worker)
        if ready:
            deadline = time.monotonic() + timeout
            while "ready: consuming" not in worker.output():
                if not worker.running() or time.monotonic() > deadline:
                    raise AssertionError(f"worker not ready:\n{worker.output()}")
                time.sleep(0.05)
            worker.descendants()
        return worker

    def runs(self) -> Counter[int]:
        """How often each task number ran (the poison task is -1)."""
        if not self.runs_file.exists():
            return Counter()
        return Counter(int(line.split()[0]) for line in self.runs_file.read_text().splitlines() if line)

    def run_times(self) -> list[float]:
        if not self.runs_file.exists():
            return []
        return [float(line.split()[2]) for line in self.runs_file.read_text().splitlines() if line]

    def first_run_after(self, when: float, timeout: float) -> float:
        """Seconds from ``when`` (a Unix time) to the first run noted after it."""
        found: list[float] = []

        def later() -> bool:
            found[:] = [t for t in self.run_times() if t > when]
            return bool(found)

        wait_for(later, timeout, "no task ran after the fault")
        return min(found) - when

    def wait_all(self, sent: int, timeout: float) -> None:
        def done() -> bool:
            ran = self.runs()
            return all(ran[n] for n in range(sent))

        try:
            wait_for(done, timeout, f"all {sent} tasks to run on {self.transport}")
        except AssertionError as exc:
            missing = sorted(set(range(sent)) - set(self.runs()))[:20]
            logs = "\n".join(w.output()[-3000:] for w in self.workers)
            raise AssertionError(f"{exc}; missing (first 20): {missing}\n{logs}") from None

    def kill_all(self) -> None:
        for worker in self.workers:
            pids = worker.descendants()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            if worker.running():
                worker.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=10)
            for pid in {*pids, *worker.seen}:
                if alive(pid) and _ours(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def _ours(pid: int) -> bool:
    try:
        return b"celeriac" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@attrs.frozen
class Figures:
    """One scenario on one transport: what the table shows."""

    scenario: str
    transport: str
    sent: int
    ran_once: int
    lost: int
    duplicated: int
    recovery_s: float | None


def figures(project: Project, scenario: str, sent: int, recovery: float | None) -> Figures:
    ran = project.runs()
    counts = [ran[n] for n in range(sent)]
    result = Figures(
        scenario=scenario,
        transport=project.transport,
        sent=sent,
        ran_once=sum(1 for c in counts if c == 1),
        lost=sum(1 for c in counts if c == 0),
        duplicated=sum(c - 1 for c in counts if c > 1),
        recovery_s=None if recovery is None else round(recovery, 2),
    )
    report = os.environ.get("CHAOS_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(attrs.asdict(result)) + "\n")
    return result


@contextlib.contextmanager
def own_redis(directory: Path) -> Iterator[Callable[[], int]]:
    """A Redis server of the test's own with appendonly on a free port; yields ``restart()``
    (SIGKILL it, start it again on the same port and files) and gives the port as ``.port``."""
    port = free_port()
    data = directory / "redis-data"
    data.mkdir()
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        log = (directory / f"redis-{len(procs)}.log").open("wb")
        procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        wait_for(lambda: _answers(port), 20, "own redis to listen")

    def restart() -> int:
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(timeout=10)
        start()
        return port

    start()
    restart.port = port  # type: ignore[attr-defined]
    try:
        yield restart
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def tasks_module() -> str:
    return textwrap.dedent(TASKS)
