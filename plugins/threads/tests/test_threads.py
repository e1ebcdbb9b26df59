"""The threads pool: real concurrency, fair dispatch, cancellation and shutdown."""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_threads import ThreadPool


def request(n: int) -> TaskRequest:
    return TaskRequest(message=TaskMessage(id=f"t{n}", task="x", args=(n,)), queue="celery", token=n)


def test_runs_up_to_concurrency_at_once() -> None:
    running, peak, lock = 0, 0, threading.Lock()
    done: list[Outcome] = []
    release = threading.Event()

    def execute(req: TaskRequest) -> Outcome:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1
        return Outcome(request=req, state=states.SUCCESS)

    pool = ThreadPool(3, execute)
    pool.start()
    for n in range(6):
        pool.submit(request(n), lambda _: None, done.append)
    wait_for(lambda: running == 3, 10, "three requests running at once")
    release.set()
    pool.stop(wait=True)
    assert peak == 3  # never more than the concurrency, from the first submit to the last
    assert sorted(o.request.id for o in done) == [f"t{n}" for n in range(6)]


def test_long_task_does_not_hold_up_short_ones() -> None:
    finished: list[str] = []
    long_one_may_end = threading.Event()

    def execute(req: TaskRequest) -> Outcome:
        if req.args[0] == 0:
            long_one_may_end.wait(10)  # the long task runs until the short ones are all done
        finished.append(req.id)
        return Outcome(request=req, state=states.SUCCESS)

    pool = ThreadPool(2, execute)
    pool.start()
    for n in range(5):
        pool.submit(request(n), lambda _: None, lambda _: None)
    # All short ones run on the free thread while the long one still holds the other.
    wait_for(lambda: len(finished) == 4, 10, "the four short requests")
    assert finished == ["t1", "t2", "t3", "t4"]
    long_one_may_end.set()
    pool.stop(wait=True)
    assert finished == ["t1", "t2", "t3", "t4", "t0"]


def test_cancel_pending_returns_requests_not_started() -> None:
    gate = threading.Event()

    def execute(req: TaskRequest) -> Outcome:
        gate.wait(5)
        return Outcome(request=req, state=states.SUCCESS)

    first_started = threading.Event()

    def on_start(req: TaskRequest) -> None:
        if req.id == "t0":
            first_started.set()

    pool = ThreadPool(1, execute)
    pool.start()
    for n in range(4):
        pool.submit(request(n), on_start, lambda _: None)
    assert first_started.wait(10), "the first request never started"
    assert [r.id for r in pool.cancel_pending()] == ["t1", "t2", "t3"]
    gate.set()
    pool.stop(wait=True)


def test_error_outside_the_task_requeues() -> None:
    outcomes: list[Outcome] = []

    def execute(req: TaskRequest) -> Outcome:
        raise RuntimeError("result store unreachable")

    pool = ThreadPool(1, execute)
    pool.start()
    pool.submit(request(1), lambda _: None, outcomes.append)
    pool.stop(wait=True)
    [outcome] = outcomes
    assert outcome.disposition is Disposition.REQUEUE
    assert "result store unreachable" in (outcome.reason or "")


def test_is_the_default_pool_of_a_worker() -> None:
    assert "threads" in {ep.name for ep in entry_points(group="celeriac.plugins")}
    app = Celeriac("t", broker="memory://", plugins=[testing], env={}, config=False)
    assert app.config.worker.pool == "threads"

    @app.task
    def ident() -> int:
        return threading.get_ident()

    with worker_thread(app, concurrency=4):
        idents = {r.get(timeout=5) for r in [ident.delay() for _ in range(40)]}
    assert threading.get_ident() not in idents
    assert 1 <= len(idents) <= 4
