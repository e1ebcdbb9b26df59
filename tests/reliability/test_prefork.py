"""The prefork pool in real worker processes: crashes, limits, recycling, scaling, shutdown."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import AsyncResult
from celeriac import Celeriac
from celeriac import TimeLimitExceededError
from celeriac import WorkerLostError
from celeriac import states
from celeriac.testing import project_app
from celeriac.testing import wait_for

from .conftest import CONFIG
from .conftest import WorkerProcess
from .conftest import alive
from .own_redis import OwnRedis

pytestmark = [pytest.mark.slow, pytest.mark.integration]
StartWorker = Callable[..., WorkerProcess]


def pids_in(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()] if marker.exists() else []


def test_child_killed_mid_task_fails_with_worker_lost(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    worker = start_worker("-c", "2")
    result = client.send_task("proj.slow", (30,), {"marker": str(marker)})
    wait_for(lambda: bool(pids_in(marker)))
    [child] = pids_in(marker)
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    with pytest.raises(WorkerLostError):
        result.get(timeout=10)
    assert time.monotonic() - killed_at < 2
    assert result.state == states.FAILURE
    served_by = client.send_task("proj.pid").get(timeout=10)
    assert served_by != child
    assert worker.proc.poll() is None
    wait_for(lambda: len(worker.descendants()) == 3)  # the zygote and two children again


def test_os_exit_in_a_task_fails_it_and_the_worker_goes_on(
    client: Celeriac, start_worker: StartWorker
) -> None:
    start_worker("-c", "1")
    with pytest.raises(WorkerLostError, match="exited while running the task"):
        client.send_task("proj.exit_now").get(timeout=10)
    assert isinstance(client.send_task("proj.pid").get(timeout=10), int)


def test_hard_time_limit_kills_the_child(client: Celeriac, start_worker: StartWorker) -> None:
    worker = start_worker("-c", "1")
    before = client.send_task("proj.pid").get(timeout=10)
    started = time.monotonic()
    with pytest.raises(TimeLimitExceededError, match="hard time limit"):
        client.send_task("proj.hang").get(timeout=10)
    assert time.monotonic() - started < 3
    # The failure is stored as the child is killed: its exit follows, a moment later under load.
    wait_for(lambda: not alive(before), 5)
    assert client.send_task("proj.pid").get(timeout=10) != before
    assert "TimeLimitExceededError" in worker.output()


def test_soft_time_limit_is_caught_by_the_task(client: Celeriac, start_worker: StartWorker) -> None:
    start_worker("-c", "1")
    assert client.send_task("proj.cleanup").get(timeout=10) == "cleaned up"


def test_max_tasks_per_child_recycles_children(client: Celeriac, start_worker: StartWorker) -> None:
    start_worker("-c", "1", prefork="max_tasks_per_child = 2\n")
    pids = [client.send_task("proj.pid").get(timeout=10) for _ in range(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


def test_max_memory_per_child_recycles_a_child_that_grew(client: Celeriac, start_worker: StartWorker) -> None:
    start_worker("-c", "1", prefork="max_memory_per_child = 150000\n")  # KiB
    first = client.send_task("proj.pid").get(timeout=10)
    assert client.send_task("proj.pid").get(timeout=10) == first
    assert client.send_task("proj.allocate", (200,)).get(timeout=10) == first
    assert client.send_task("proj.pid").get(timeout=10) != first


def test_reject_on_worker_lost_requeues_the_message(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "attempts"
    start_worker("-c", "1")
    assert client.send_task("proj.flaky", (str(marker),)).get(timeout=15) == "second attempt"
    assert len(pids_in(marker)) == 2


def test_long_task_does_not_hold_up_short_ones(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    start_worker("-c", "2")
    long = client.send_task("proj.slow", (3,), {"marker": str(marker)})
    wait_for(lambda: bool(pids_in(marker)))
    short = [client.send_task("proj.pid") for _ in range(6)]
    assert {r.get(timeout=2) for r in short} != set(pids_in(marker))  # served by the other child
    assert long.state == states.PENDING
    assert long.get(timeout=10) == pids_in(marker)[0]


def test_autoscale_grows_with_the_load_and_shrinks_back(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    worker = start_worker(prefork='autoscale = "3,1"\nautoscale_keepalive = 0.5\n')
    assert len(worker.descendants()) == 2  # the zygote and one child
    results = [client.send_task("proj.slow", (0.5,), {"marker": str(marker)}) for _ in range(9)]
    for result in results:
        result.get(timeout=20)
    assert len(set(pids_in(marker))) == 3
    wait_for(lambda: len(worker.descendants()) == 2, timeout=10)


def test_warm_shutdown_finishes_running_tasks_and_stops_children(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    worker = start_worker("-c", "2")
    running = client.send_task("proj.slow", (1,), {"marker": str(marker)})
    wait_for(lambda: bool(pids_in(marker)))
    processes = worker.descendants()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert running.state == states.SUCCESS
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5)


@pytest.mark.parametrize("whole_group", [False, True], ids=["parent", "process-group"])
def test_warm_shutdown_replaces_no_child_or_zygote(
    client: Celeriac, project: Path, start_worker: StartWorker, whole_group: bool
) -> None:
    marker = project / "running"
    worker = start_worker("-c", "3", session=True)
    # Signalled with the group, the child running a task dies of it as a process told to stop
    # does; the idle ones and the zygote must not (nor be replaced).
    running = None if whole_group else client.send_task("proj.slow", (1.5,), {"marker": str(marker)})
    client.send_task("proj.pid").get(timeout=10)
    wait_for(lambda: whole_group or bool(pids_in(marker)))
    processes = set(worker.descendants())
    if whole_group:  # as systemd (KillMode=control-group), a terminal or `kill -TERM -PGID` do
        os.killpg(worker.pid, signal.SIGTERM)
    else:
        worker.signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while worker.proc.poll() is None and time.monotonic() < deadline:
        worker.descendants()  # every process seen until the worker exits
        time.sleep(0.01)
    assert worker.wait() == 0
    assert running is None or running.state == states.SUCCESS
    output = worker.output()
    assert "replacing it" not in output
    assert "starting a new zygote" not in output
    assert worker.seen == processes  # nothing was forked after the signal


def test_cold_shutdown_kills_children_and_gives_the_task_back(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    worker = start_worker("-c", "2")
    running = client.send_task("proj.slow", (30,), {"marker": str(marker)})
    wait_for(lambda: bool(pids_in(marker)))
    processes = worker.descendants()
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "warm shutdown" in worker.output(), 10, "the first signal handled")
    worker.signal(signal.SIGINT)
    worker.wait(timeout=10)
    assert running.state == states.PENDING
    assert client.transport.queue_length("celery") == 1
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5)


def test_children_and_zygote_exit_when_the_worker_is_killed(
    client: Celeriac, start_worker: StartWorker
) -> None:
    worker = start_worker("-c", "2")
    client.send_task("proj.pid").get(timeout=10)
    processes = worker.descendants()
    assert len(processes) == 3
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5)


def test_revoke_with_terminate_kills_the_running_child(
    client: Celeriac, project: Path, start_worker: StartWorker
) -> None:
    marker = project / "running"
    worker = start_worker("-c", "1")
    result = client.send_task("proj.slow", (30,), {"marker": str(marker)})
    wait_for(lambda: bool(pids_in(marker)))
    [child] = pids_in(marker)
    client.control.revoke(result.id, terminate=True)
    wait_for(lambda: not alive(child), timeout=5)
    assert result.state == states.REVOKED
    assert client.send_task("proj.pid").get(timeout=10) != child
    assert "terminated" in worker.output()


def test_pool_grows_and_shrinks_on_remote_control(client: Celeriac, start_worker: StartWorker) -> None:
    worker = start_worker("-c", "1")
    [reply] = client.control.broadcast("pool_grow", {"n": 2}, reply=True, timeout=5, limit=1)
    assert "3 slots" in str(reply)
    wait_for(lambda: len(worker.descendants()) == 4)  # the zygote and three children
    [reply] = client.control.broadcast("pool_shrink", {"n": 2}, reply=True, timeout=5, limit=1)
    assert "1 slots" in str(reply)
    wait_for(lambda: len(worker.descendants()) == 2)
    client.control.broadcast("autoscale", {"max": 6, "min": 2}, reply=True, timeout=5, limit=1)
    wait_for(lambda: len(worker.descendants()) == 3)  # the minimum, 2
    [reply] = client.control.broadcast("pool_shrink", {"n": 1}, reply=True, timeout=5, limit=1)
    assert "5 slots" in str(reply)  # the maximum came down
    wait_for(lambda: len(worker.descendants()) == 2)


@pytest.fixture
def result_redis(project: Path, tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of the test's own as the project's result store (the broker stays
    SQLite, whose ``visibility_timeout`` is 5 s), with one retry of a failed command."""
    (tmp_path / "results").mkdir()
    store = OwnRedis(tmp_path / "results")
    store.start()
    (project / "celeriac.toml").write_text(
        f'result_store = "{store.url()}"\n{CONFIG}[redis]\nretry_attempts = 1\nretry_backoff_base = 0.2\n'
    )
    yield store
    store.stop()


def send_marked(client: Celeriac, project: Path, n: int) -> tuple[list[AsyncResult], list[Path]]:
    """``n`` short tasks, each noting every run of it in a file of its own."""
    markers = [project / f"ran-{i}" for i in range(n)]
    return [client.send_task("proj.slow", (0.01,), {"marker": str(m)}) for m in markers], markers


def assert_all_ran_some_twice(pids: list[int], markers: list[Path]) -> None:
    runs = [pids_in(marker) for marker in markers]
    assert [pid in ran for pid, ran in zip(pids, runs, strict=True)] == [True] * len(markers)
    assert sum(len(ran) for ran in runs) > len(markers)  # some ran again: none was acked unwritten


def test_results_the_children_carry_are_written_before_the_ack_and_survive_a_store_outage(
    project: Path, start_worker: StartWorker, result_redis: OwnRedis
) -> None:
    """Children hand their results to the worker, which writes them in batches and
    acknowledges a message only once its result is written (docs/pools.md): with the result
    store down, the writes fail, the messages go back, and the tasks run again once it is up.
    """
    worker = start_worker("-c", "2")
    result_redis.stop()
    with project_app(project) as client:
        results, markers = send_marked(client, project, 12)
        wait_for(lambda: all(pids_in(m) for m in markers), timeout=30, what="every task ran once")
        wait_for(lambda: "could not be written" in worker.output(), timeout=30, what="a failed write")
        result_redis.start()
        pids = [result.get(timeout=60) for result in results]
        assert {result.state for result in results} == {states.SUCCESS}
    assert_all_ran_some_twice(pids, markers)
    assert "its message goes back to run again" in worker.output()


def test_a_write_held_up_past_half_the_visibility_timeout_gives_the_message_back(
    project: Path, start_worker: StartWorker, result_redis: OwnRedis
) -> None:
    """A message held while its result is written has no lease renewed (docs/guarantees.md):
    a write that hangs (the store frozen, its connection open) counts as failed after half
    the ``visibility_timeout``, 2.5 s here, and the message goes back before its lease ends."""
    worker = start_worker("-c", "2")
    assert result_redis.proc is not None
    frozen = result_redis.proc.pid
    os.kill(frozen, signal.SIGSTOP)
    try:
        with project_app(project) as client:
            results, markers = send_marked(client, project, 6)
            wait_for(lambda: "within 2.5 s" in worker.output(), timeout=30, what="a write given up on")

            def ran_again() -> bool:
                return sum(len(pids_in(m)) for m in markers) > len(markers)

            wait_for(ran_again, timeout=30, what="a message given back ran again, the store still frozen")
            os.kill(frozen, signal.SIGCONT)
            pids = [result.get(timeout=60) for result in results]
            assert {result.state for result in results} == {states.SUCCESS}
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert_all_ran_some_twice(pids, markers)
