"""The asyncio pool: coroutines interleave on one loop, plain tasks run on threads, limits cancel."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest

import celeriac_asyncio
import celeriac_json
from celeriac import Celeriac
from celeriac import MaxRetriesExceededError
from celeriac import SoftTimeLimitExceededError
from celeriac import Task
from celeriac import TaskCall
from celeriac import TimeLimitExceededError
from celeriac import states
from celeriac import testing
from celeriac._model.message import Embed
from celeriac.plugin import Disposition
from celeriac.plugin import Executor
from celeriac.plugin import Outcome
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_asyncio import AsyncioConfig
from celeriac_asyncio import AsyncioPool


class Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def celeriac_task_prerun(self, task: Task[Any, Any], request: TaskRequest) -> None:
        self.calls.append(("prerun", request.id))

    @hookimpl
    def celeriac_task_postrun(
        self, task: Task[Any, Any], request: TaskRequest, state: str, retval: Any
    ) -> None:
        self.calls.append((f"postrun {state}", request.id))


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def app(hooks: Hooks) -> Iterator[Celeriac]:
    instance = Celeriac("t", broker="memory://", plugins=[testing, hooks], env={}, config=False)
    yield instance
    instance.close()


def test_is_installed() -> None:
    assert "asyncio" in {ep.name for ep in entry_points(group="celeriac.plugins")}


def test_hundred_sleeping_tasks_interleave(app: Celeriac) -> None:
    @app.task
    async def nap(n: int) -> int:
        await asyncio.sleep(1)
        return n

    with worker_thread(app, pool="asyncio", concurrency=1000):
        started = time.monotonic()
        results = [nap.delay(n) for n in range(100)]
        assert [r.get(timeout=10) for r in results] == list(range(100))
        assert time.monotonic() - started < 2.5  # about 1 s, not 100


def test_async_and_plain_tasks_of_one_app(app: Celeriac, hooks: Hooks) -> None:
    @app.task
    async def where_async() -> str:
        return threading.current_thread().name

    @app.task
    def where_sync() -> str:
        return threading.current_thread().name

    @app.task(bind=True)
    async def bound(self: TaskCall) -> str:
        assert self.request is not None
        return self.request.id

    with worker_thread(app, pool="asyncio", concurrency=10):
        on_loop = where_async.delay()
        on_thread = where_sync.delay()
        handle = bound.apply_async()
        assert on_loop.get(timeout=5) == "celeriac-asyncio"
        assert on_thread.get(timeout=5).startswith("celeriac-asyncio-sync-")
        assert handle.get(timeout=5) == handle.id
    assert ("prerun", on_loop.id) in hooks.calls
    assert ("postrun SUCCESS", on_loop.id) in hooks.calls


def test_failures_and_automatic_retries(app: Celeriac) -> None:
    attempts: list[int] = []

    @app.task
    async def broken() -> None:
        raise KeyError("missing")

    @app.task(autoretry_for=(ValueError,), max_retries=1, default_retry_delay=0)
    async def flaky() -> None:
        attempts.append(1)
        raise ValueError("again")

    with worker_thread(app, pool="asyncio", concurrency=10):
        failed = broken.delay()
        with pytest.raises(KeyError):
            failed.get(timeout=5)
        with pytest.raises(MaxRetriesExceededError):
            flaky.delay().get(timeout=5)
    assert failed.state == states.FAILURE
    assert len(attempts) == 2


def test_soft_time_limit_is_raised_inside_the_coroutine(app: Celeriac) -> None:
    @app.task(soft_time_limit=0.2)
    async def careful() -> str:
        try:
            await asyncio.sleep(10)
        except SoftTimeLimitExceededError:
            await asyncio.sleep(0.05)  # it may still await while it cleans up
            return "cleaned up"
        return "not interrupted"

    @app.task(soft_time_limit=0.2)
    async def careless() -> None:
        await asyncio.sleep(10)

    with worker_thread(app, pool="asyncio", concurrency=10):
        assert careful.delay().get(timeout=5) == "cleaned up"
        with pytest.raises(SoftTimeLimitExceededError):
            careless.delay().get(timeout=5)


def test_hard_time_limit_cancels_the_coroutine(app: Celeriac) -> None:
    cancelled = threading.Event()

    @app.task(time_limit=0.2)
    async def stuck() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with worker_thread(app, pool="asyncio", concurrency=10):
        started = time.monotonic()
        with pytest.raises(TimeLimitExceededError, match="hard time limit"):
            stuck.delay().get(timeout=5)
        assert time.monotonic() - started < 2
    assert cancelled.is_set()


# --- the pool on its own ---------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.outcomes: list[Outcome] = []
        self._cond = threading.Condition()

    def on_start(self, request: TaskRequest) -> None:
        self.started.append(request.id)

    def on_done(self, outcome: Outcome) -> None:
        with self._cond:
            self.outcomes.append(outcome)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.outcomes) >= count, timeout)
            return list(self.outcomes)


def request(task: str, n: int, *args: Any) -> TaskRequest:
    return TaskRequest(message=TaskMessage(id=f"t{n}", task=task, args=args), queue="celery", token=n)


def test_requests_beyond_concurrency_wait_and_can_be_cancelled(app: Celeriac) -> None:
    gate = threading.Event()

    @app.task(name="held")
    async def held() -> None:
        # Until the cancel is done: a first one that ended (it slept 0.3 s) would let a third
        # start before the test saw two running, and the wait below never succeed.
        await asyncio.to_thread(gate.wait, 10)

    pool = AsyncioPool(Executor(app), concurrency=2)
    pool.start()
    rec = Recorder()
    for n in range(5):
        pool.submit(request("held", n), rec.on_start, rec.on_done)
    wait_for(lambda: len(rec.started) == 2, 10, "two requests started")
    assert sorted(r.id for r in pool.cancel_pending()) == ["t2", "t3", "t4"]
    assert pool.stats()["coroutines"] == 2
    gate.set()
    pool.stop(wait=True)
    assert sorted(o.request.id for o in rec.outcomes) == ["t0", "t1"]
    assert sorted(rec.started) == ["t0", "t1"]


def test_cold_stop_abandons_running_coroutines(app: Celeriac) -> None:
    @app.task(name="nap")
    async def nap(seconds: float) -> None:
        await asyncio.sleep(seconds)

    pool = AsyncioPool(Executor(app), concurrency=2, settings=AsyncioConfig(sync_threads=1))
    pool.start()
    rec = Recorder()
    pool.submit(request("nap", 0, 30), rec.on_start, rec.on_done)
    wait_for(lambda: rec.started, 10, "the first request started")
    started = time.monotonic()
    pool.stop(wait=False)
    assert time.monotonic() - started < 2
    assert rec.outcomes == []


def test_revoked_while_waiting_is_not_run(app: Celeriac) -> None:
    ran: list[int] = []

    @app.task(name="nap")
    async def nap(n: int) -> None:
        ran.append(n)
        await asyncio.sleep(0.2)

    pool = AsyncioPool(Executor(app, revoked={"t1"}), concurrency=1)
    pool.start()
    rec = Recorder()
    pool.submit(request("nap", 0, 0), rec.on_start, rec.on_done)
    pool.submit(request("nap", 1, 1), rec.on_start, rec.on_done)
    outcomes = {o.request.id: o for o in rec.wait(2)}
    pool.stop(wait=True)
    assert outcomes["t1"].state == states.REVOKED
    assert ran == [0]


def test_start_on_the_loop_only_when_it_does_no_io(hooks: Hooks) -> None:
    """Without hooks a late-acked task starts on the loop; STARTED to store, an early ack or
    a prerun hook send the start to a thread. Each way the tasks run and report."""
    # Only the plugins this needs: an installed plugin with a prerun hook (celeriac-opentelemetry)
    # would send every start to a thread, as the hooked app below shows.
    needed = [testing, celeriac_json, celeriac_asyncio]
    plain = Celeriac("t", broker="memory://", plugins=needed, autoload_plugins=False, env={}, config=False)
    try:

        @plain.task(name="t.quick")
        async def quick() -> str:
            return "quick"

        @plain.task(name="t.tracked", track_started=True)
        async def tracked() -> str:
            return "tracked"

        @plain.task(name="t.early", acks_late=False)
        async def early() -> str:
            return "early"

        executor = Executor(plain)
        request = TaskRequest(message=TaskMessage(id="q1", task="t.quick"), queue="celery")
        assert executor.begins_without_io(request)
        assert not executor.begins_without_io(
            TaskRequest(message=TaskMessage(id="t1", task="t.tracked"), queue="celery")
        )
        assert not Executor(plain, revoked={"q1"}).begins_without_io(request)
        with worker_thread(plain, pool="asyncio", concurrency=10):
            results = [quick.delay(), tracked.delay(), early.delay()]
            assert [r.get(timeout=5) for r in results] == ["quick", "tracked", "early"]
    finally:
        plain.close()
    hooked = Celeriac("t", broker="memory://", plugins=[testing, hooks], env={}, config=False)
    try:

        @hooked.task(name="t.quick")
        async def quick_hooked() -> str:
            return "quick"

        request = TaskRequest(message=TaskMessage(id="q2", task="t.quick"), queue="celery")
        assert not Executor(hooked).begins_without_io(request)  # a plugin's prerun hook may block
    finally:
        hooked.close()


# --- bookkeeping in batches ------------------------------------------------------------


class CountingStore:
    """The app's in-memory store, counting the records of each call (or failing them all)."""

    def __init__(self, app: Celeriac, *, fail: bool = False) -> None:
        self.store = app.result_store
        self.batches: list[int] = []  # records per call: store_many's, or 1 for store's
        self.fail = fail
        self._store = functools.partial(type(self.store).store, self.store)  # not the patched one
        self.store.store_many = self.store_many  # type: ignore[attr-defined]
        self.store.store = self.store_one  # type: ignore[method-assign]

    def store_many(self, records: Any) -> None:
        self.batches.append(len(records))
        if self.fail:
            raise ConnectionError("result store unreachable")
        for record in records:
            self._store(record)

    def store_one(self, record: Any) -> None:
        self.batches.append(1)
        if self.fail:
            raise ConnectionError("result store unreachable")
        self._store(record)


class Gate:
    """Holds coroutines until ``size`` of them wait, then lets them all go in the same turn
    of the loop: they then finish together, whatever the machine's timing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.waiting = 0
        self.event: asyncio.Event | None = None

    async def wait(self) -> None:
        self.event = self.event or asyncio.Event()
        self.waiting += 1
        if self.waiting == self.size:
            self.event.set()
        await self.event.wait()


def run_gated(app: Celeriac, count: int, concurrency: int) -> dict[str, Outcome]:
    """Submit ``count`` requests of the task "nap" (argument: their number) to a new pool."""
    pool = AsyncioPool(Executor(app), concurrency=concurrency)
    pool.start()
    rec = Recorder()
    try:
        for n in range(count):
            pool.submit(request("nap", n, n), rec.on_start, rec.on_done)
        return {o.request.id: o for o in rec.wait(count)}
    finally:
        pool.stop(wait=True)


def test_coroutines_finishing_together_store_their_results_together(app: Celeriac) -> None:
    gate = Gate(50)

    @app.task(name="nap")
    async def nap(n: int) -> int:
        await gate.wait()
        return n

    counting = CountingStore(app)
    outcomes = run_gated(app, 50, concurrency=100)
    assert {o.state for o in outcomes.values()} == {states.SUCCESS}
    assert [app.AsyncResult(f"t{n}").get(timeout=1) for n in range(50)] == list(range(50))
    assert counting.batches == [50]  # one call for the fifty


def test_a_large_batch_is_finished_in_parts_on_several_threads(app: Celeriac) -> None:
    """A thousand coroutines finishing together: their bookkeeping (workflows, hooks) is
    spread over the bookkeeping threads in parts, each part's results stored in one call."""
    gate = Gate(1000)

    @app.task(name="nap")
    async def nap(n: int) -> int:
        await gate.wait()
        return n

    counting = CountingStore(app)
    outcomes = run_gated(app, 1000, concurrency=1000)
    assert {o.state for o in outcomes.values()} == {states.SUCCESS}
    assert sorted(counting.batches) == [104] + [128] * 7  # 1,000 in parts of at least 128


def test_an_unstorable_result_fails_only_its_own_task_in_a_batch(app: Celeriac) -> None:
    gate = Gate(6)

    @app.task(name="nap")
    async def nap(n: int) -> object:
        await gate.wait()
        return object() if n == 3 else n

    counting = CountingStore(app)
    outcomes = run_gated(app, 6, concurrency=10)
    assert counting.batches[0] == 5  # the others, stored together
    assert outcomes["t3"].state == states.FAILURE
    assert "SerializationError" in (outcomes["t3"].reason or "")
    assert app.AsyncResult("t3").state == states.FAILURE
    assert [outcomes[f"t{n}"].state for n in (0, 1, 2, 4, 5)] == [states.SUCCESS] * 5


def test_a_batch_the_store_refuses_gives_every_message_back(app: Celeriac) -> None:
    gate = Gate(5)

    @app.task(name="nap")
    async def nap(n: int) -> int:
        await gate.wait()
        return n

    counting = CountingStore(app, fail=True)
    outcomes = run_gated(app, 5, concurrency=10)
    assert counting.batches == [5]
    assert {o.disposition for o in outcomes.values()} == {Disposition.REQUEUE}
    assert all("result store unreachable" in (o.reason or "") for o in outcomes.values())


def test_a_request_whose_workflow_fails_is_given_back_alone(app: Celeriac) -> None:
    """One request of a batch whose callback cannot be sent (a routing key with no exchange)
    goes back to the broker; the others of the batch finish and are acknowledged."""
    gate = Gate(3)

    @app.task(name="nap")
    async def nap(n: int) -> int:
        await gate.wait()
        return n

    unsendable = app.tasks["nap"].s().set(routing_key="nowhere").to_dict()
    pool = AsyncioPool(Executor(app), concurrency=10)
    pool.start()
    rec = Recorder()
    try:
        for n in range(3):
            embed = Embed(callbacks=(unsendable,)) if n == 1 else Embed()
            message = TaskMessage(id=f"t{n}", task="nap", args=(n,), embed=embed)
            pool.submit(TaskRequest(message=message, queue="celery", token=n), rec.on_start, rec.on_done)
        outcomes = {o.request.id: o for o in rec.wait(3)}
    finally:
        pool.stop(wait=True)
    assert outcomes["t1"].disposition is Disposition.REQUEUE
    assert "needs an exchange" in (outcomes["t1"].reason or "")
    assert [outcomes[t].disposition for t in ("t0", "t2")] == [Disposition.ACK, Disposition.ACK]
