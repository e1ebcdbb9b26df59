"""Test support for celeriac apps and plugins, shipped to pytest as a plugin.

For task authors (fixtures, loaded through the ``pytest11`` entry point when celeriac is
installed): ``celeriac_app`` is an isolated app on the in-process ``memory://`` broker and
result store (settings from the ``celeriac_config`` fixture, which a conftest overrides, a
broker URL included), ``celeriac_worker`` runs a worker for it in a thread of the test, and
:func:`join` returns once every message in the worker's queues has been run and settled,
so a test waits on that fact instead of sleeping. docs/testing.md has a worked example.

For plugin authors: :func:`worker_thread`, :func:`process_group` (worker processes killed by
PID afterwards), :func:`service_unreachable` (skip, or fail under ``CI=true``) and the
``memory://`` classes to build test doubles on.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import NoReturn
from typing import TypeVar
from typing import final

import pytest

from celeriac._contract.kvstore_testing import MemoryKeyValue
from celeriac._contract.kvstore_testing import check_key_value
from celeriac._contract.memory import MemoryResultStore
from celeriac._contract.memory import MemorySubscription
from celeriac._contract.memory import MemoryTransport
from celeriac._model.errors import TimeoutError  # noqa: A004 - celeriac's own, raised by join()

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._worker.worker import Worker

__all__ = [
    "MemoryKeyValue",
    "MemoryResultStore",
    "MemorySubscription",
    "MemoryTransport",
    "ProcessGroup",
    "WorkerProcess",
    "celeriac_app",
    "celeriac_command",
    "celeriac_config",
    "celeriac_worker",
    "celeriac_worker_options",
    "check_key_value",
    "free_port",
    "importable",
    "in_forked_child",
    "join",
    "local_server",
    "process_group",
    "project_app",
    "service_unreachable",
    "subprocess_env",
    "wait_for",
    "worker_thread",
    "write_project",
]

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    what: str = "the condition",
    *,
    interval: float = 0.02,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    For a fact :func:`join` cannot see: a file a worker process wrote, a line in its log, a
    state another thread reached. The wait is bounded: after ``timeout`` seconds it fails
    the test with an :class:`AssertionError` naming ``what``, so a fact that never comes
    fails the test rather than hanging the suite. The predicate is called once more at the
    deadline, so a slow machine that got there just in time passes.

    :param interval: seconds between two calls; the poll, not a guess at how long to wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        late = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if late:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))


class WorkerProcess:
    """A worker (or any command) running as a subprocess in an end-to-end test.

    Its output goes to a log file that assertion messages quote, so a failing test shows
    what the worker said. Stop it by PID with :meth:`stop`; every wait is bounded.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    def start(
        cls, command: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None
    ) -> WorkerProcess:
        with log.open("wb") as out:
            proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return cls(proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 20.0, line: str = "ready: consuming") -> None:
        """Wait for ``line`` in the output; fail with the output if the process exits first."""
        deadline = time.monotonic() + timeout
        while line not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)


def subprocess_env(directory: Path, *, drop: Sequence[str] = ("CELERIAC_",), **extra: str) -> dict[str, str]:
    """This process's environment for a process of a test project in ``directory``.

    Variables starting with one of ``drop`` are left out, so that the project's own files are
    its whole configuration whatever the developer's shell exports; ``directory`` is the
    import path, so ``-A proj`` finds the project's tasks module.

    :param extra: more variables to set.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop))}
    env["PYTHONPATH"] = str(directory)
    env.update(extra)
    return env


def celeriac_command(app: str, *args: str) -> list[str]:
    """``python -m celeriac -A app ARGS`` with this interpreter (the test's virtualenv)."""
    return [sys.executable, "-m", "celeriac", "-A", app, *args]


@final
class ProcessGroup:
    """The processes one test started in a project directory, each killed by its PID at the end.

    :param directory: the working directory of every process, where their logs go too.
    :param env: their environment (:func:`subprocess_env` by default).
    """

    def __init__(self, directory: Path, env: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.env = dict(env) if env is not None else subprocess_env(directory)
        self.started: list[WorkerProcess] = []

    def start(
        self,
        command: Sequence[str],
        *,
        ready: str | None = "ready: consuming",
        timeout: float = 20.0,
        log: str = "worker",
    ) -> WorkerProcess:
        """Start ``command`` and wait (at most ``timeout`` s) for the line ``ready`` in its output.

        :param ready: None to return at once, without waiting.
        :param log: the log file's stem; a counter keeps each process's log apart.
        """
        path = self.directory / f"{log}-{len(self.started)}.log"
        process = WorkerProcess.start(command, cwd=self.directory, log=path, env=self.env)
        self.started.append(process)
        if ready is not None:
            process.wait_ready(timeout=timeout, line=ready)
        return process

    def kill(self) -> None:
        """SIGKILL every process still running and reap it, each wait bounded to 10 s.

        A kill, not a stop: a test is over, and a process that ignores SIGTERM must not hold
        up the suite or outlive it.
        """
        for process in self.started:
            if process.proc.poll() is None:
                process.signal(signal.SIGKILL)
                process.wait(timeout=10)


@contextlib.contextmanager
def process_group(directory: Path, env: Mapping[str, str] | None = None) -> Iterator[ProcessGroup]:
    """A :class:`ProcessGroup` whose processes are killed on leaving, however the test ended."""
    group = ProcessGroup(directory, env)
    try:
        yield group
    finally:
        group.kill()


def write_project(directory: Path, tasks: str, config: str = "", *, module: str = "proj") -> Path:
    """Write a project for worker processes into ``directory``: ``module``.py holding ``tasks``
    (a tasks module's source, dedented) and a ``celeriac.toml`` holding ``config``; returns
    ``directory``, for a ``project`` fixture to hand on."""
    (directory / f"{module}.py").write_text(textwrap.dedent(tasks))
    (directory / "celeriac.toml").write_text(textwrap.dedent(config))
    return directory


@contextlib.contextmanager
def project_app(directory: Path, module: str = "proj", *, attribute: str = "app") -> Iterator[Celeriac]:
    """The app of the project in ``directory``, imported in the test's process as a worker
    process started there imports it (its working directory, its import path, a fresh import
    of ``module``): the producer side of an end-to-end test. Closed, and the module and path
    forgotten, on leaving, so the next test imports its own project."""
    previous = os.getcwd()
    os.chdir(directory)
    sys.path.insert(0, str(directory))
    sys.modules.pop(module, None)
    try:
        app: Celeriac = getattr(importlib.import_module(module), attribute)
        try:
            yield app
        finally:
            app.close()
    finally:
        sys.modules.pop(module, None)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(directory))
        os.chdir(previous)


def importable(name: str) -> bool:
    """Can the module ``name`` be imported here? (``importlib.util.find_spec`` would raise for
    kombu once it is imported: kombu replaces its entry in ``sys.modules`` with an object
    whose ``__spec__`` is None.)"""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def service_unreachable(problem: str) -> NoReturn:
    """Skip the test, giving ``problem`` as the reason; under ``CI=true``, where every service
    must be there, fail it instead, so CI never passes by testing nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (CI=true: these tests must run)")
    pytest.skip(problem)


def in_forked_child(work: Callable[[], object], timeout: float = 30.0) -> int:
    """Run ``work`` in a child made by ``os.fork()`` and return its exit code (0: ``work``
    returned; 1: it raised). A child still running after ``timeout`` seconds is killed and
    the test fails. For what a forked process (a prefork pool's child) must do on its own."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    import select

    pidfd = os.pidfd_open(pid)  # readable once the child has exited
    try:
        exited, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not exited:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"the forked child did not finish within {timeout} s")
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@contextlib.contextmanager
def worker_thread(app: Celeriac, **overrides: Any) -> Iterator[Worker]:
    """Run a worker for ``app`` in a background thread, started and consuming when this
    yields; stop it (warm) on leaving.

    Polls the broker every 0.1 s (not 1 s) so that stopping is quick in tests.

    :param overrides: ``[worker]`` settings (``concurrency``, ``pool``, ``queues`` ...).
    """
    worker = app.worker(**{"poll_timeout": 0.1, **overrides})
    failed: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            failed.append(exc)
            raise

    thread = threading.Thread(target=run, name="celeriac-test-worker", daemon=True)
    thread.start()
    try:
        while not worker.wait_started(0.05):
            if not thread.is_alive():
                raise RuntimeError(f"the worker thread exited before it was ready: {failed or 'no error'}")
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError(f"worker thread did not stop within 30 s; its threads:\n{_stacks()}")


def _stacks() -> str:
    """Every thread's current stack, for a worker that would not stop."""
    frames = sys._current_frames()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"--- {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in frames.items()
    )


def join(worker: Worker, queues: Sequence[str] | None = None, *, timeout: float = 10.0) -> None:
    """Return when every message in ``queues`` has been run and settled by ``worker``.

    Settled means the task ran (or was refused, dead-lettered, revoked), its result was
    stored and its message acknowledged; messages the tasks sent meanwhile (retries,
    callbacks, chain steps) are waited for too, as are countdowns the transport counts in
    its queue length. The worker runs in this process (:func:`worker_thread`, the
    ``celeriac_worker`` fixture); the broker may be ``memory://`` or a real one.

    :param queues: the queues to wait for; by default every queue the worker consumes.
    :param timeout: seconds; :class:`celeriac.errors.TimeoutError` names what is left.
    """
    names = tuple(queues) if queues is not None else worker.queues
    strangers = [name for name in names if name not in worker.queues]
    if strangers:
        raise ValueError(
            f"join: {worker.hostname} does not consume {', '.join(strangers)} "
            f"(it consumes {', '.join(worker.queues)}); nothing would ever drain them"
        )
    deadline = time.monotonic() + timeout
    transport = worker.app.transport
    if not worker.wait_started(timeout):
        raise TimeoutError(f"join: {worker.hostname} did not start within {timeout} s")
    while True:
        first = worker.activity()
        waiting = {name: transport.queue_length(name) for name in names}
        remaining = deadline - time.monotonic()
        idle = first is not None and first.held == 0 and not any(waiting.values())
        # A message fetched while we looked is received by the end of the round under way:
        # idle at both ends of that round, with nothing taken, is idle.
        if idle and first is not None and worker.wait_round(first.rounds, max(remaining, 0.0)):
            second = worker.activity()
            if second is not None and second.held == 0 and second.taken == first.taken:
                return
            continue
        if remaining <= 0:
            held = first.held if first is not None else 0
            left = ", ".join(f"{count} in {name!r}" for name, count in waiting.items() if count)
            raise TimeoutError(
                f"join: not settled after {timeout} s: {held} held by {worker.hostname}"
                + (f", waiting {left}" if left else "")
            )
        # Not idle: look again when the consumer finishes its next fetch round (it also
        # ends at each poll timeout), but at least every 50 ms while it waits for space.
        if first is not None:
            worker.wait_round(first.rounds, min(remaining, 0.05))


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    """Settings for ``celeriac_app`` (the keys of celeriac.toml); override this fixture in a
    conftest or a test module to change them, ``broker`` included (``memory://`` by default)."""
    return {}


@pytest.fixture
def celeriac_app(celeriac_config: dict[str, Any]) -> Iterator[Celeriac]:
    """An isolated app: no config file, no ``CELERIAC_*`` environment, the installed plugins
    loaded, on its own ``memory://`` broker and result store unless ``celeriac_config`` names
    others. Each app builds its own in-memory broker: produce and consume with the same app."""
    from celeriac._client.app import Celeriac

    app = Celeriac("tests", env={}, config=False, **{"broker": "memory://", **celeriac_config})
    yield app
    app.close()


@pytest.fixture
def celeriac_worker_options() -> dict[str, Any]:
    """``[worker]`` settings for ``celeriac_worker`` (``concurrency``, ``pool``, ``queues`` ...)."""
    return {}


@pytest.fixture
def celeriac_worker(celeriac_app: Celeriac, celeriac_worker_options: dict[str, Any]) -> Iterator[Worker]:
    """A worker for ``celeriac_app`` running in a thread of this test, consuming when the test
    starts and stopped (warm) after it; pass it to :func:`join`."""
    with worker_thread(celeriac_app, **celeriac_worker_options) as worker:
        yield worker


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to now, below the kernel's ephemeral
    range: the kernel never hands such a port to an outgoing connection, so it stays free
    for the server a test starts on it. (A port the kernel picked was an ephemeral one,
    which any test's connection could take as its local port meanwhile, and the server
    failed with "Address already in use".)"""
    import random
    import socket

    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(low - 20_000, 1024), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port below {low} on 127.0.0.1")


def _ephemeral_low() -> int:
    """The lowest port the kernel picks for outgoing connections (Linux), else IANA's."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 49152


@contextlib.contextmanager
def local_server(
    command: Sequence[str],
    port: int,
    *,
    log: Path,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Run a server (an emulator of a cloud service ...) that the test started, on ``port``.

    Waits until 127.0.0.1:``port`` accepts connections, at most ``timeout`` seconds (failing
    with the server's output if it exits or does not listen in time), and kills the process
    by its PID on leaving, however the test ended.

    :param log: the file the server's output goes to.
    """
    import socket

    process = WorkerProcess.start(command, cwd=log.parent, log=log, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.proc.poll() is not None:
                    raise AssertionError(
                        f"{command[0]} exited with {process.proc.returncode}:\n{process.output()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{command[0]} not listening on {port} after {timeout} s:\n{process.output()}"
                    ) from None
                time.sleep(0.05)
        yield process
    finally:
        if process.proc.poll() is None:
            process.signal(signal.SIGKILL)
            process.wait(timeout=10)
