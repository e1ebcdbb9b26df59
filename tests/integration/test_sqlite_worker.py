"""A real worker process on the SQLite default: results, crashes, shutdown, several workers."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac.testing import wait_for

from .conftest import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_worker_process_runs_tasks(client: Celeriac, start_worker: Callable[..., WorkerProcess]) -> None:
    start_worker("-c", "4")
    results = [client.send_task("proj.add", (n, n)) for n in range(100)]
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(100)]


def test_task_of_a_worker_killed_mid_task_is_delivered_again(
    client: Celeriac, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    first = start_worker("-c", "1")
    result = client.send_task("proj.slow", (1.0,), {"marker": str(marker)})
    wait_for(lambda: _started(marker))
    first.signal(signal.SIGKILL)
    first.wait()
    assert result.state == states.PENDING
    start_worker("-c", "1")  # the lease (visibility_timeout = 2 s) runs out, the task comes back
    assert result.get(timeout=30) == 1.0
    pids = marker.read_text().split()
    assert len(pids) == 2
    assert pids[0] != pids[1]


def test_long_task_is_not_redelivered_while_its_worker_lives(
    client: Celeriac, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    start_worker("-c", "1")
    start_worker("-c", "1")
    # Runs for twice the visibility timeout: lease renewal must keep the second worker off it.
    assert client.send_task("proj.slow", (4.0,), {"marker": str(marker)}).get(timeout=30) == 4.0
    assert len(marker.read_text().split()) == 1


def test_sigterm_finishes_running_task_and_gives_back_the_rest(
    client: Celeriac, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    worker = start_worker("-c", "1", "--prefetch", "4")
    running = client.send_task("proj.slow", (1.0,), {"marker": str(marker)})
    wait_for(lambda: _started(marker))
    waiting = [client.send_task("proj.noop") for _ in range(3)]
    wait_for(lambda: client.transport.queue_length("celery") == 0, 10, "the three reserved by the worker")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert running.state == states.SUCCESS
    assert all(r.state == states.PENDING for r in waiting)
    assert client.transport.queue_length("celery") == 3
    assert "warm shutdown" in worker.output()


def test_second_signal_is_a_cold_shutdown(
    client: Celeriac, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    worker = start_worker("-c", "1")
    running = client.send_task("proj.slow", (30.0,), {"marker": str(marker)})
    wait_for(lambda: _started(marker))
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "warm shutdown" in worker.output(), 10, "the first signal handled")
    worker.signal(signal.SIGINT)
    worker.wait(timeout=10)
    assert running.state == states.PENDING
    assert client.transport.queue_length("celery") == 1  # requeued at once, not after the lease


def test_several_workers_share_the_queue_without_duplicates(
    client: Celeriac, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker("-c", "2")
    start_worker("-c", "2")
    results = [client.send_task("proj.add", (n, 1)) for n in range(300)]
    assert sorted(r.get(timeout=30) for r in results) == [n + 1 for n in range(300)]
    assert client.transport.queue_length("celery") == 0


def _started(marker: Path) -> bool:
    """Has the task written its pid? (It creates the file before writing to it.)"""
    return marker.exists() and bool(marker.read_text().strip())
