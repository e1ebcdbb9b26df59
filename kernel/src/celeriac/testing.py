"""Test support: an in-memory broker and result store, and pytest fixtures.

``memory://`` is a real transport with the same contract as the others (leases,
redelivery, delay, priorities, dead letters) inside one process, so unit tests exercise
the worker without a server. Register this module as a plugin to use it:
``Celeriac(broker="memory://", plugins=[celeriac.testing])``; each app gets its own
broker, so produce and consume with the same app. Shipped to pytest through
the ``pytest11`` entry point, which adds the ``celeriac_app`` fixture; ``worker_thread``
is a context manager that runs a worker in a background thread, and ``process_group``
starts worker processes for end-to-end tests and kills them by PID afterwards.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from queue import Empty
from queue import SimpleQueue
from typing import TYPE_CHECKING
from typing import Any
from typing import NoReturn
from typing import final

import pytest

from celeriac.hookspecs import hookimpl
from celeriac.protocols import DeadLetter
from celeriac.protocols import Delivery
from celeriac.protocols import Envelope
from celeriac.protocols import ResultRecord
from celeriac.protocols import ResultStoreSpec
from celeriac.protocols import TransportSpec
from celeriac.states import SUCCESS

if TYPE_CHECKING:
    from celeriac.app import Celeriac
    from celeriac.worker.worker import Worker


class MemoryTransport:
    """One process's broker: per-queue heaps ordered by (visible time, -priority, sequence)."""

    def __init__(self, visibility_timeout: float = 300.0) -> None:
        self.visibility_timeout = visibility_timeout
        self._queues: dict[str, list[tuple[float, int, int, Envelope, int]]] = {}
        self._leased: dict[int, tuple[str, Envelope, int, int, float]] = {}
        self._dead: dict[str, DeadLetter] = {}
        self._subscribers: dict[str, list[MemorySubscription]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def declare_queue(self, queue: str) -> None:
        with self._cond:
            self._queues.setdefault(queue, [])

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        with self._cond:
            for envelope in envelopes:
                self._push(queue, envelope, priority, time.monotonic() + delay, 0)
            self._cond.notify_all()

    def _push(self, queue: str, envelope: Envelope, priority: int, visible: float, count: int) -> None:
        heapq.heappush(
            self._queues.setdefault(queue, []), (visible, -priority, next(self._seq), envelope, count)
        )

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._expire_leases()
                found = self._take(queues, limit)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(min(remaining, 0.05))

    def _take(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        now = time.monotonic()
        ready = []
        for name in queues:
            for visible, neg_priority, seq, envelope, count in self._queues.get(name, []):
                if visible <= now:
                    ready.append((neg_priority, seq, name, envelope, count, visible))
        ready.sort(key=lambda item: (item[0], item[1]))
        taken = []
        for neg_priority, seq, name, envelope, count, visible in ready[:limit]:
            self._queues[name].remove((visible, neg_priority, seq, envelope, count))
            heapq.heapify(self._queues[name])
            self._leased[seq] = (name, envelope, -neg_priority, count + 1, now + self.visibility_timeout)
            taken.append(Delivery(envelope=envelope, queue=name, tag=seq, delivery_count=count + 1))
        return taken

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for tag, (queue, envelope, priority, count, until) in list(self._leased.items()):
            if until <= now:
                del self._leased[tag]
                self._push(queue, envelope, priority, now, count)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            for delivery in deliveries:
                self._leased.pop(delivery.tag, None)

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        with self._cond:
            for delivery in deliveries:
                leased = self._leased.pop(delivery.tag, None)
                if leased is not None and requeue:
                    queue, envelope, priority, count, _ = leased
                    self._push(queue, envelope, priority, time.monotonic(), count)
            self._cond.notify_all()

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            for delivery in deliveries:
                if delivery.tag in self._leased:
                    queue, envelope, priority, count, _ = self._leased[delivery.tag]
                    self._leased[delivery.tag] = (
                        queue,
                        envelope,
                        priority,
                        count,
                        time.monotonic() + self.visibility_timeout,
                    )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self._cond:
            self._leased.pop(delivery.tag, None)
            dead_id = str(uuid.uuid4())
            self._dead[dead_id] = DeadLetter(
                id=dead_id,
                queue=delivery.queue,
                envelope=delivery.envelope,
                reason=reason,
                failed_at=time.time(),
            )

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self._cond:
            letters = [d for d in self._dead.values() if queue is None or d.queue == queue]
        return sorted(letters, key=lambda d: d.failed_at)[:limit]

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        with self._cond:
            letter = self._dead.pop(dead_letter_id, None)
            if letter is None:
                return False
            self._push(letter.queue, letter.envelope, 0, time.monotonic(), 0)
            self._cond.notify_all()
            return True

    def purge_dead_letters(self, queue: str | None = None) -> int:
        with self._cond:
            doomed = [key for key, d in self._dead.items() if queue is None or d.queue == queue]
            for key in doomed:
                del self._dead[key]
            return len(doomed)

    def purge(self, queue: str) -> int:
        with self._cond:
            count = len(self._queues.get(queue, []))
            self._queues[queue] = []
            return count

    def queue_length(self, queue: str) -> int:
        with self._cond:
            return len(self._queues.get(queue, []))

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        with self._cond:
            for subscription in self._subscribers.get(channel, []):
                subscription.put(envelope)

    def subscribe(self, channel: str) -> MemorySubscription:
        subscription = MemorySubscription()
        with self._cond:
            self._subscribers.setdefault(channel, []).append(subscription)
        return subscription

    def close(self) -> None:
        """Messages stay: several apps in one test may share the transport."""


class MemorySubscription:
    """One subscriber's queue of broadcast envelopes."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[Envelope] = SimpleQueue()

    def put(self, envelope: Envelope) -> None:
        self._queue.put(envelope)

    def get(self, timeout: float) -> list[Envelope]:
        try:
            received = [self._queue.get(timeout=timeout)]
        except Empty:
            return []
        while not self._queue.empty():
            received.append(self._queue.get_nowait())
        return received

    def close(self) -> None:
        """Nothing to release."""


class MemoryResultStore:
    """Results in a dict, with the SUCCESS-is-final rule of every store."""

    def __init__(self) -> None:
        self._records: dict[str, ResultRecord] = {}
        self._chords: dict[str, set[str]] = {}
        self._cond = threading.Condition()

    def store(self, record: ResultRecord) -> None:
        with self._cond:
            current = self._records.get(record.task_id)
            if current is None or current.state != SUCCESS:
                self._records[record.task_id] = record
            self._cond.notify_all()

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        for record in records:
            self.store(record)

    def get(self, task_id: str) -> ResultRecord | None:
        with self._cond:
            return self._records.get(task_id)

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                record = self._records.get(task_id)
                if record is not None and record.state in states:
                    return record
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def forget(self, task_id: str) -> None:
        with self._cond:
            self._records.pop(task_id, None)

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        with self._cond:
            parts = self._chords.setdefault(group_id, set())
            if task_id in parts:
                return False
            parts.add(task_id)
            return len(parts) == size

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        with self._cond:
            return [self._records.get(task_id) for task_id in task_ids]

    def close(self) -> None:
        """Nothing to release."""


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=("memory",),
            factory=lambda url, config: MemoryTransport(config.visibility_timeout),
            description="in-process broker for tests",
        )
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("memory",),
            factory=lambda url, config: MemoryResultStore(),
            description="in-process result store for tests",
        )
    ]


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


@contextlib.contextmanager
def worker_thread(app: Celeriac, **overrides: Any) -> Iterator[Worker]:
    """Run a worker for ``app`` in a background thread; stop it (warm) on leaving.

    Polls the broker every 0.1 s (not 1 s) so that stopping is quick in tests.
    """
    worker = app.worker(**{"poll_timeout": 0.1, **overrides})
    thread = threading.Thread(target=worker.run, name="celeriac-test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError("worker thread did not stop within 30 s")


@pytest.fixture
def celeriac_app() -> Iterator[Celeriac]:
    """An app on its own in-memory broker and result store, with the installed plugins loaded.

    Each app builds its own ``memory://`` broker: produce and consume with the same app.
    """
    from celeriac.app import Celeriac

    app = Celeriac("tests", broker="memory://", plugins=[sys.modules[__name__]], env={}, config=False)
    yield app
    app.close()
