"""The prefork pool with plain functions: dispatch, crashes, limits, scaling, stopping.

The functions run in forked children, so they can be closures; what they report comes back
in the outcome's ``reason``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import ConfigError
from celeriac import SoftTimeLimitExceededError
from celeriac import states
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.testing import wait_for
from celeriac_prefork import PreforkConfig
from celeriac_prefork import PreforkPool
from celeriac_prefork._child import rss_kib
from celeriac_prefork._config import bounds
from celeriac_prefork._zygote import Zygote
from celeriac_prefork._zygote import ZygoteError

Limits = tuple[float | None, float | None]
MakePool = Callable[..., tuple[PreforkPool, "Recorder"]]


def request(n: int, *args: object, timelimit: Limits = (None, None)) -> TaskRequest:
    message = TaskMessage(id=f"t{n}", task="x", args=args, timelimit=timelimit)
    return TaskRequest(message=message, queue="celery", token=n)


def run(req: TaskRequest) -> Outcome:
    """``args`` = (action, seconds): sleep, then report the child's pid."""
    action, seconds = req.args
    if action == "gate":  # seconds: a file; the task runs until the test creates it
        wait_for(Path(str(seconds)).exists, 30, "the gate")
    if action == "exit":
        os._exit(3)
    if action == "soft":
        try:
            time.sleep(seconds)
        except SoftTimeLimitExceededError:
            return Outcome(request=req, state=states.SUCCESS, reason=f"{os.getpid()} cleaned up")
    if action == "allocate":
        globals().setdefault("_ballast", []).append(bytearray(64 * 1024 * 1024))
    if action == "raise":
        raise RuntimeError("store unreachable")
    if action == "rss":
        return Outcome(request=req, state=states.SUCCESS, reason=str(rss_kib()))
    if action == "deferred":  # seconds: the file the record's write creates ("" fails it)
        return Outcome(request=req, state=states.SUCCESS, written=FileWrite(str(seconds)))
    time.sleep(seconds)
    return Outcome(request=req, state=states.SUCCESS, reason=str(os.getpid()))


class FileWrite:
    """A deferred store's pending write (``Outcome.written``): creates ``path`` when waited
    for, in the process that waits; an empty path fails."""

    def __init__(self, path: str) -> None:
        self.path = path

    def wait(self) -> None:
        if not self.path:
            raise ConnectionError("test: the results' connection is down")
        Path(self.path).write_text(str(os.getpid()))


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.outcomes: list[Outcome] = []
        self._cond = threading.Condition()

    def on_start(self, req: TaskRequest) -> None:
        with self._cond:
            self.started.append(req.id)

    def on_done(self, outcome: Outcome) -> None:
        with self._cond:
            self.outcomes.append(outcome)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.outcomes) >= count, timeout), self.outcomes
            return list(self.outcomes)

    def by_id(self) -> dict[str, Outcome]:
        with self._cond:
            return {o.request.id: o for o in self.outcomes}


@pytest.fixture
def make_pool() -> Iterator[MakePool]:
    pools: list[PreforkPool] = []

    def make(
        concurrency: int = 2, execute: Callable[[TaskRequest], Outcome] = run, **settings: object
    ) -> tuple[PreforkPool, Recorder]:
        pool = PreforkPool(execute, concurrency=concurrency, settings=PreforkConfig(**settings))  # type: ignore[arg-type]
        pool.start()
        pools.append(pool)
        return pool, Recorder()

    yield make
    for pool in pools:
        pool.stop(wait=False)


def submit(pool: PreforkPool, recorder: Recorder, req: TaskRequest) -> None:
    pool.submit(req, recorder.on_start, recorder.on_done)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone, or being torn down
        return False


def test_runs_requests_in_child_processes(make_pool: MakePool) -> None:
    pool, rec = make_pool(3)
    children = set(pool.stats()["processes"])
    assert len(children) == 3
    for n in range(12):
        submit(pool, rec, request(n, "sleep", 0.05))
    outcomes = rec.wait(12)
    pids = {int(o.reason or 0) for o in outcomes}
    assert pids <= children
    assert len(pids) == 3
    assert os.getpid() not in pids
    assert sorted(rec.started) == sorted(o.request.id for o in outcomes)
    assert pool.limit == 3


def test_long_task_does_not_hold_up_short_ones(make_pool: MakePool, tmp_path: Path) -> None:
    pool, rec = make_pool(2)
    gate = tmp_path / "gate"
    # The long one runs until the gate opens, not for a time a loaded machine could outlast.
    submit(pool, rec, request(0, "gate", str(gate)))
    for n in range(1, 6):
        submit(pool, rec, request(n, "sleep", 0.01))
    rec.wait(5)  # all five short ones, on the other child, while the long one still runs
    assert "t0" not in rec.by_id()
    gate.touch()
    rec.wait(6)


def test_requests_wait_in_the_parent_and_can_be_cancelled(make_pool: MakePool, tmp_path: Path) -> None:
    pool, rec = make_pool(1)
    gate = tmp_path / "gate"
    # The first runs until the cancel is done: had it ended first (it slept 0.3 s), the second
    # would have started, and the wait below never seen the first alone.
    submit(pool, rec, request(0, "gate", str(gate)))
    for n in range(1, 4):
        submit(pool, rec, request(n, "sleep", 0.3))
    wait_for(lambda: rec.started == ["t0"], 10, "the first request started")
    assert [r.id for r in pool.cancel_pending()] == ["t1", "t2", "t3"]
    assert rec.started == ["t0"]
    gate.touch()
    assert [o.request.id for o in rec.wait(1)] == ["t0"]


def test_child_dying_mid_task_is_worker_lost_and_replaced(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    [first] = pool.stats()["processes"]
    submit(pool, rec, request(0, "exit", 0))
    [lost] = rec.wait(1, timeout=5)
    assert lost.state == states.FAILURE
    assert lost.disposition is Disposition.ACK
    assert (lost.reason or "").startswith("WorkerLostError")
    submit(pool, rec, request(1, "sleep", 0))
    served_by = int(rec.wait(2)[1].reason or 0)
    assert served_by != first
    assert not alive(first)
    assert pool.stats()["lost"] == 1


def test_sigkill_of_a_busy_child_is_noticed_at_once(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    [child] = pool.stats()["processes"]
    submit(pool, rec, request(0, "sleep", 30))
    wait_for(lambda: rec.started, 10, "the first request started")
    killed_at = time.monotonic()
    os.kill(child, signal.SIGKILL)
    [lost] = rec.wait(1, timeout=5)
    assert time.monotonic() - killed_at < 0.5
    assert "WorkerLostError" in (lost.reason or "")


def test_hard_time_limit_kills_and_replaces_the_child(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    [child] = pool.stats()["processes"]
    started = time.monotonic()
    submit(pool, rec, request(0, "sleep", 30, timelimit=(0.5, None)))
    [outcome] = rec.wait(1, timeout=5)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert outcome.state == states.FAILURE
    assert (outcome.reason or "").startswith("TimeLimitExceededError: hard time limit (0.5 s)")
    wait_for(lambda: not alive(child))
    submit(pool, rec, request(1, "sleep", 0))
    assert int(rec.wait(2)[1].reason or 0) != child
    assert pool.stats()["timeouts"] == 1


def test_soft_time_limit_is_raised_inside_the_task(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    [child] = pool.stats()["processes"]
    submit(pool, rec, request(0, "soft", 30, timelimit=(None, 0.3)))
    [outcome] = rec.wait(1, timeout=5)
    assert outcome.reason == f"{child} cleaned up"
    # The timer is cancelled after each request: the next one runs past the old limit.
    submit(pool, rec, request(1, "sleep", 0.5))
    assert rec.wait(2)[1].reason == str(child)


def test_max_tasks_per_child_replaces_the_child(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1, max_tasks_per_child=2)
    for n in range(6):
        submit(pool, rec, request(n, "sleep", 0))
    pids = [int(o.reason or 0) for o in rec.wait(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert pool.stats()["retired"] == 3


def test_max_memory_per_child_replaces_the_child_after_its_task(
    make_pool: MakePool,
) -> None:
    # The limit is 32 MiB above what a child of this pool holds when it starts (children come
    # from a zygote, not from this test process, whose size depends on the tests before it).
    sizer, sizes = make_pool(1)
    submit(sizer, sizes, request(0, "rss", 0))
    [size] = sizes.wait(1)
    sizer.stop(wait=True)
    pool, rec = make_pool(1, max_memory_per_child=int(size.reason or 0) + 32 * 1024)
    submit(pool, rec, request(0, "sleep", 0))
    submit(pool, rec, request(1, "sleep", 0))
    submit(pool, rec, request(2, "allocate", 0))
    submit(pool, rec, request(3, "sleep", 0))
    pids = [int(o.reason or 0) for o in rec.wait(4)]
    assert pids[0] == pids[1] == pids[2] != pids[3]  # replaced after the task that grew it


def test_error_outside_the_task_requeues(make_pool: MakePool) -> None:
    pool, rec = make_pool(1)
    submit(pool, rec, request(0, "raise", 0))
    [outcome] = rec.wait(1)
    assert outcome.disposition is Disposition.REQUEUE
    assert "store unreachable" in (outcome.reason or "")


def test_autoscale_grows_under_load_and_shrinks_when_idle(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(autoscale="4,1", autoscale_keepalive=0.3)
    assert pool.limit == 4
    assert len(pool.stats()["processes"]) == 1
    for n in range(8):
        submit(pool, rec, request(n, "sleep", 0.4))
    # Forked on a loaded machine, the children may take seconds; the four stay while work waits.
    wait_for(lambda: len(pool.stats()["processes"]) == 4, 10, "four children")
    outcomes = rec.wait(8)
    assert len({o.reason for o in outcomes}) == 4
    wait_for(lambda: len(pool.stats()["processes"]) == 1, 10, "back to one child")


def test_grow_and_shrink(make_pool: MakePool) -> None:
    pool, rec = make_pool(2)
    pool.grow(2)
    wait_for(lambda: len(pool.stats()["processes"]) == 4)
    assert pool.limit == 4
    submit(pool, rec, request(0, "sleep", 0.5))
    pool.shrink(3)
    wait_for(lambda: len(pool.stats()["processes"]) == 1)  # the busy child stays...
    [outcome] = rec.wait(1)
    assert outcome.state == states.SUCCESS  # ...and finishes its task
    assert pool.stats()["processes"] == [int(outcome.reason or 0)]


def test_terminate_kills_the_child_running_a_task(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    submit(pool, rec, request(0, "sleep", 30))
    wait_for(lambda: rec.started, 10, "the first request started")
    assert pool.terminate("t0")
    assert not pool.terminate("nope")
    [outcome] = rec.wait(1, timeout=5)
    assert outcome.state == states.REVOKED


def test_warm_stop_finishes_running_and_queued_requests(
    make_pool: MakePool,
) -> None:
    pool, rec = make_pool(1)
    [child] = pool.stats()["processes"]
    zygote = pool.stats()["zygote"]
    submit(pool, rec, request(0, "sleep", 0.3))
    submit(pool, rec, request(1, "sleep", 0.1))
    pool.stop(wait=True)
    assert [o.state for o in rec.outcomes] == [states.SUCCESS, states.SUCCESS]
    assert not alive(child)
    assert not alive(zygote)


def test_cold_stop_kills_children_at_once(make_pool: MakePool) -> None:
    pool, rec = make_pool(2)
    children = pool.stats()["processes"]
    submit(pool, rec, request(0, "sleep", 30))
    wait_for(lambda: rec.started, 10, "the first request started")
    started = time.monotonic()
    pool.stop(wait=False)
    assert time.monotonic() - started < 2
    assert rec.outcomes == []  # abandoned: the consumer gives the message back
    assert not any(alive(pid) for pid in children)


def test_autoscale_setting_is_checked() -> None:
    assert bounds(PreforkConfig(autoscale="10,3"), 4).maximum == 10
    assert bounds(PreforkConfig(autoscale="10"), 4).minimum == 0
    assert not bounds(PreforkConfig(), 4).autoscaling
    for wrong in ("x", "3,10", "0,0", "1,2,3"):
        with pytest.raises(ConfigError, match="autoscale"):
            bounds(PreforkConfig(autoscale=wrong), 4)


def test_time_limit_set_by_remote_control_wins(make_pool: MakePool) -> None:
    pool, rec = make_pool(1)
    pool.set_time_limit("x", hard=0.3)
    submit(pool, rec, request(0, "sleep", 30, timelimit=(60, None)))
    [outcome] = rec.wait(1, timeout=5)
    assert (outcome.reason or "").startswith("TimeLimitExceededError: hard time limit (0.3 s)")


def test_autoscale_can_be_changed_at_run_time(make_pool: MakePool) -> None:
    pool, _ = make_pool(1)
    pool.autoscale(3, 2)
    assert pool.limit == 3
    wait_for(lambda: len(pool.stats()["processes"]) == 2)
    pool.autoscale(1, 1)
    wait_for(lambda: len(pool.stats()["processes"]) == 1)


def test_request_revoked_while_waiting_never_reaches_a_child(make_pool: MakePool) -> None:
    revoked = {"t1"}

    def execute(req: TaskRequest) -> Outcome:
        if req.id in revoked:  # what the kernel's Executor does for a revoked id
            return Outcome(request=req, state=states.REVOKED, reason=str(os.getpid()))
        return run(req)

    pool = PreforkPool(execute, concurrency=1, revoked=revoked)
    pool.start()
    try:
        rec = Recorder()
        submit(pool, rec, request(0, "sleep", 0.2))
        submit(pool, rec, request(1, "sleep", 0))
        submit(pool, rec, request(2, "sleep", 0))
        rec.wait(3)
        outcomes = rec.by_id()
        assert outcomes["t1"].state == states.REVOKED
        assert outcomes["t1"].reason == str(os.getpid())  # settled here, not in a child
        assert rec.started == ["t0", "t2"]
    finally:
        pool.stop(wait=False)


def test_a_killed_zygote_is_started_again(make_pool: MakePool) -> None:
    pool, rec = make_pool(1)
    zygote = pool.stats()["zygote"]
    os.kill(zygote, signal.SIGKILL)
    submit(pool, rec, request(0, "exit", 0))  # the child dies; its replacement needs a zygote
    rec.wait(1)
    wait_for(lambda: pool.stats()["zygote"] not in (zygote, 0) and len(pool.stats()["processes"]) == 1)
    submit(pool, rec, request(1, "sleep", 0))
    assert rec.wait(2)[1].state == states.SUCCESS


def test_a_forkserver_that_cannot_load_the_app_fails_the_start() -> None:
    zygote = Zygote(lambda conn: None, [sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(ZygoteError, match="could not load the app"):
        zygote.start()


def test_requests_queued_behind_short_tasks_run_once_across_recycled_children(make_pool: MakePool) -> None:
    """Behind a short task a child is given the next request at once; a child that retires
    after the task before it never reads it, and it runs in the next child instead."""
    pool, rec = make_pool(1, max_tasks_per_child=3)
    for n in range(30):
        submit(pool, rec, request(n, "sleep", 0))
    outcomes = rec.wait(30)
    assert sorted(o.request.id for o in outcomes) == sorted(f"t{n}" for n in range(30))
    assert all(o.state == states.SUCCESS for o in outcomes)
    assert len({o.reason for o in outcomes}) == 10  # three tasks per child
    assert pool.stats()["retired"] >= 9


def test_a_request_queued_behind_a_child_that_dies_runs_in_another(make_pool: MakePool) -> None:
    pool, rec = make_pool(1)
    submit(pool, rec, request(0, "sleep", 0))
    rec.wait(1)  # task "x" is known to be short now
    submit(pool, rec, request(1, "sleep", 0.2))
    submit(pool, rec, request(2, "exit", 0))  # sent when t1 ends, with t3 queued behind it
    submit(pool, rec, request(3, "sleep", 0))
    outcomes = rec.wait(4)
    by_id = rec.by_id()
    assert by_id["t2"].state == states.FAILURE and "WorkerLostError" in (by_id["t2"].reason or "")
    assert by_id["t3"].state == states.SUCCESS
    assert [o.request.id for o in outcomes].count("t3") == 1
    assert by_id["t3"].reason != by_id["t1"].reason  # a new child ran it


def test_the_reserve_grows_behind_short_tasks_only(make_pool: MakePool) -> None:
    """The worker reserves (``ReservingPool.reserve``) twice what the children take behind
    short tasks (a lot queued in them, the next being fetched); behind a task that takes
    long, one message per child, as with any pool."""
    from celeriac.plugin import ReservingPool
    from celeriac_prefork._pool import QUEUE_DEPTH

    def timed(req: TaskRequest) -> Outcome:
        _, seconds = req.args
        time.sleep(seconds)
        return Outcome(request=req, state=states.SUCCESS, runtime=seconds, reason=str(os.getpid()))

    pool, rec = make_pool(2, execute=timed)
    assert isinstance(pool, ReservingPool)
    assert pool.reserve == 2  # nothing has run yet
    for n in range(6):
        submit(pool, rec, request(n, "sleep", 0.0))
    rec.wait(6)
    assert pool.reserve == 2 * 2 * QUEUE_DEPTH  # two children
    for n in range(6, 12):
        submit(pool, rec, request(n, "sleep", 0.05))  # 50 ms: not short
    rec.wait(12)
    assert pool.reserve == 2


def test_shrink_after_autoscale_lowers_the_slots_it_reports(make_pool: MakePool) -> None:
    pool, _ = make_pool(4)
    pool.autoscale(6, 2)
    wait_for(lambda: len(pool.stats()["processes"]) == 4)
    pool.shrink(1)
    assert pool.limit == 5
    wait_for(lambda: len(pool.stats()["processes"]) == 3)
    assert (pool.stats()["min_concurrency"], pool.stats()["max_concurrency"]) == (2, 5)
    pool.shrink(3)
    assert pool.limit == 2
    wait_for(lambda: len(pool.stats()["processes"]) == 0)  # autoscaling: down to none


def test_shrink_of_a_fixed_pool_lowers_the_slots_it_reports(make_pool: MakePool) -> None:
    pool, _ = make_pool(3)
    pool.shrink(1)
    assert pool.limit == 2
    wait_for(lambda: len(pool.stats()["processes"]) == 2)


def test_a_request_crosses_to_a_child_whole() -> None:
    """Requests cross as their fields' values: every field, set or default, comes back equal."""
    import datetime as dt

    from celeriac_prefork._child import decode_requests
    from celeriac_prefork._child import encode_requests

    full = TaskMessage(
        id="a",
        task="proj.add",
        args=(1, [2]),
        kwargs={"k": {"v": 1}},
        eta=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
        group="g",
        group_index=3,
        retries=2,
        timelimit=(10.0, 5.0),
        root_id="r",
        parent_id="p",
        stamps={"s": 1},
        extra_headers={"x-h": "v"},
        reply_to="q",
        priority=5,
    )
    requests = [
        TaskRequest(message=full, queue="q1", delivery_count=3, hostname="w@h", token=7),
        request(8, "sleep", 0.0),
    ]
    decoded = decode_requests(encode_requests([(requests[0], 5.0), (requests[1], None)]))
    assert decoded == [(requests[0], 5.0), (requests[1], None)]


class RevokedOnSecondLook:
    """``t1`` is revoked between the pool's two looks at it: after it was given to a child
    with a request queued behind it, before the write."""

    def __init__(self) -> None:
        self.looks = 0

    def __contains__(self, task_id: object) -> bool:
        if task_id != "t1":
            return False
        self.looks += 1
        return self.looks >= 2


def test_requests_queued_behind_one_revoked_meanwhile_still_run(tmp_path: Path) -> None:
    revoked = RevokedOnSecondLook()
    gate = tmp_path / "go"

    def execute(req: TaskRequest) -> Outcome:
        if req.id in revoked:  # what the kernel's Executor does for a revoked id
            return Outcome(request=req, state=states.REVOKED)
        if req.args and req.args[0] == "gate":
            wait_for(gate.exists, 10, "the gate")
        return Outcome(request=req, state=states.SUCCESS, reason=str(os.getpid()))

    pool = PreforkPool(execute, concurrency=1, revoked=revoked)
    pool.start()
    try:
        rec = Recorder()
        submit(pool, rec, request(9))  # a run-time history: this task is short
        rec.wait(1)
        submit(pool, rec, request(0, "gate"))  # runs while the next three wait here
        for n in (1, 2, 3):
            submit(pool, rec, request(n))
        gate.touch()
        rec.wait(5)
        outcomes = rec.by_id()
        assert outcomes["t1"].state == states.REVOKED
        assert [outcomes[f"t{n}"].state for n in (0, 2, 3)] == [states.SUCCESS] * 3
        assert revoked.looks >= 2  # it was revoked after the pool had given it to the child
    finally:
        pool.stop(wait=False)


def test_a_child_reports_an_outcome_once_its_deferred_record_is_written(
    make_pool: MakePool, tmp_path: Path
) -> None:
    """The parent acknowledges on the outcome, so the child waits for ``Outcome.written``
    (a deferred store's write, which only the child can wait for) before it reports; a
    write that failed gives the message back instead of acknowledging it."""
    pool, rec = make_pool(1)
    marker = tmp_path / "written"
    submit(pool, rec, request(1, "deferred", str(marker)))
    [outcome] = rec.wait(1)
    assert marker.read_text() == str(pool.stats()["processes"][0])  # written by the child
    assert outcome.disposition is Disposition.ACK and outcome.written is None
    submit(pool, rec, request(2, "deferred", ""))
    rec.wait(2)
    failed = rec.by_id()["t2"]
    assert failed.disposition is Disposition.REQUEUE
    assert "SUCCESS record could not be written" in (failed.reason or "")
    assert "results' connection is down" in (failed.reason or "")
