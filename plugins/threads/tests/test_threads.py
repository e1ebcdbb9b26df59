"""The threads pool: real concurrency, fair dispatch, cancellation and shutdown."""

from __future__ import annotations

import threading
import time
from importlib.metadata import entry_points

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
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
    time.sleep(0.2)
    assert peak == 3
    release.set()
    pool.stop(wait=True)
    assert sorted(o.request.id for o in done) == [f"t{n}" for n in range(6)]


def test_long_task_does_not_hold_up_short_ones() -> None:
    finished: list[str] = []

    def execute(req: TaskRequest) -> Outcome:
        time.sleep(1.0 if req.args[0] == 0 else 0.01)
        finished.append(req.id)
        return Outcome(request=req, state=states.SUCCESS)

    pool = ThreadPool(2, execute)
    pool.start()
    for n in range(5):
        pool.submit(request(n), lambda _: None, lambda _: None)
    time.sleep(0.5)
    assert finished == ["t1", "t2", "t3", "t4"]  # all short ones ran on the free thread
    pool.stop(wait=True)


def test_cancel_pending_returns_requests_not_started() -> None:
    gate = threading.Event()

    def execute(req: TaskRequest) -> Outcome:
        gate.wait(5)
        return Outcome(request=req, state=states.SUCCESS)

    pool = ThreadPool(1, execute)
    pool.start()
    for n in range(4):
        pool.submit(request(n), lambda _: None, lambda _: None)
    time.sleep(0.1)
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
