"""A result store that writes later (``DeferredStore``, as ``rpc://``): the worker settles a
task's message only once its final record is written, and gives the message back when the
write fails, so the task runs again rather than finishing without a result."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac._model.message import Embed
from celeriac._worker import settle
from celeriac._worker.events import EventDispatcher
from celeriac._worker.inflight import InFlight
from celeriac._worker.inflight import InFlightTable
from celeriac._worker.settle import Settler
from celeriac.plugin import Config
from celeriac.plugin import DeferredStore
from celeriac.plugin import Envelope
from celeriac.plugin import Executor
from celeriac.plugin import Outcome
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.testing import MemoryResultStore
from celeriac.testing import MemoryTransport
from celeriac.testing import in_forked_child
from celeriac.testing import wait_for
from celeriac.testing import worker_thread


class DeferredResults(MemoryResultStore):
    """Final records are written when the worker waits for them (``failures`` of those
    writes fail first; the writes of tasks named in ``held`` do not finish until ``release``
    is set); ``log`` says what happened, in order, acknowledgements included (one entry a
    call)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.failures = 0
        self.held: set[str] = set()
        self.release = threading.Event()
        self.acked = 0  # messages acknowledged, however many to a call

    def store(self, record: ResultRecord) -> None:
        self.log.append(f"stored {record.state}")
        super().store(record)

    def store_deferred(self, record: ResultRecord) -> Write:
        self.log.append(f"handed over {record.state}")
        return Write(self, record)


class Write:
    def __init__(self, store: DeferredResults, record: ResultRecord) -> None:
        self.store = store
        self.record = record

    def finished(self, timeout: float = 0.0) -> bool:
        return self.record.task_id not in self.store.held or self.store.release.wait(timeout)

    def wait(self) -> None:
        if not self.finished():  # the worker blocks on a write under way: noted, then held
            self.store.log.append("waited on an unfinished write")
            self.store.release.wait(10)
        if self.store.failures:
            self.store.failures -= 1
            self.store.log.append("write failed")
            raise ConnectionError("test: the results' connection is down")
        MemoryResultStore.store(self.store, self.record)
        self.store.log.append(f"written {self.record.state}")


class DeferredPlugin:
    def __init__(self, store: DeferredResults) -> None:
        self.store = store

    @hookimpl
    def celeriac_add_result_stores(self) -> Sequence[ResultStoreSpec]:
        return [ResultStoreSpec(schemes=("deferred",), factory=self.make)]

    def make(self, url: str, config: Config) -> DeferredResults:
        return self.store


@pytest.fixture
def store() -> DeferredResults:
    return DeferredResults()


@pytest.fixture
def app(store: DeferredResults) -> Iterator[Celeriac]:
    made = Celeriac(
        "tests",
        broker="memory://",
        result_store="deferred://",
        plugins=[testing, DeferredPlugin(store)],
        env={},
        config=False,
    )
    for name in ("ack", "dead_letter", "reject"):
        logged(made, store, name)
    yield made
    made.close()


@pytest.fixture
def add(app: Celeriac) -> Any:
    """``t.add``, registered on the worker's app."""

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    return add


@pytest.fixture
def count(app: Celeriac) -> Any:
    """``t.count``: returns how many times it ran."""
    runs: list[int] = []

    @app.task(name="t.count")
    def count() -> int:
        runs.append(1)
        return len(runs)

    return count


def logged(app: Celeriac, store: DeferredResults, name: str) -> None:
    """Note each call of the transport's ``name`` in the store's log."""
    original = getattr(app.transport, name)

    def call(deliveries: Any, *args: Any, **kwargs: Any) -> Any:
        store.log.append(name)
        if name == "ack":
            store.acked += len(deliveries)
        return original(deliveries, *args, **kwargs)

    setattr(app.transport, name, call)


def test_a_final_record_is_handed_over_and_written_before_the_ack(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    assert isinstance(store, DeferredStore)

    with worker_thread(app):
        assert add.delay(2, 3).get(timeout=10) == 5
        wait_for(lambda: "ack" in store.log, 10, "acknowledged")
    assert store.log == ["handed over SUCCESS", "written SUCCESS", "ack"]


def test_a_write_that_fails_gives_the_message_back_to_run_again(
    app: Celeriac, store: DeferredResults, count: Any
) -> None:
    store.failures = 1

    with worker_thread(app):
        assert count.delay().get(timeout=10) == 2  # the first run's record was never written
        wait_for(lambda: "ack" in store.log, 10, "acknowledged")
    assert store.log == [
        "handed over SUCCESS",
        "write failed",
        "reject",  # given back, requeued
        "handed over SUCCESS",
        "written SUCCESS",
        "ack",
    ]
    assert app.transport.queue_length("celery") == 0


def test_a_failure_to_dead_letter_waits_for_its_record_too(app: Celeriac, store: DeferredResults) -> None:
    store.failures = 1
    runs: list[int] = []

    @app.task(acks_late=True, acks_on_failure_or_timeout=False)
    def broken() -> None:
        runs.append(1)
        raise ValueError("broken")

    with worker_thread(app):
        result = broken.delay()
        wait_for(lambda: "dead_letter" in store.log, 10, "dead-lettered")
    assert result.state == states.FAILURE
    assert len(runs) == 2
    assert store.log == [
        "handed over FAILURE",
        "write failed",
        "reject",
        "handed over FAILURE",
        "written FAILURE",
        "dead_letter",
    ]
    assert len(app.transport.dead_letters()) == 1


def test_retry_is_written_before_the_rerun_is_sent(app: Celeriac, store: DeferredResults) -> None:
    """Only final records are deferred: a rerun (maybe in another process) must not have
    its states overtaken by this run's RETRY."""

    @app.task(bind=True)
    def flaky(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return "done"

    with worker_thread(app):
        assert flaky.delay().get(timeout=10) == "done"
        # Both messages acknowledged, in one call or two, in either order: the first run's
        # ack may come last, when its pool thread is held up after sending the rerun.
        wait_for(lambda: store.acked == 2, 10, "both acknowledged")
    assert store.log.index("stored RETRY") < store.log.index("handed over SUCCESS")
    assert "handed over RETRY" not in store.log
    assert store.log.index("written SUCCESS") < len(store.log) - 1 - store.log[::-1].index("ack")


def test_an_executor_not_asked_to_defer_writes_before_it_returns(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """A pool whose outcomes nobody waits on (the default) gets records written at once."""

    request = TaskRequest(message=TaskMessage(id="t1", task="t.add", args=(1, 2)), queue="celery")
    outcome = Executor(app)(request)
    assert outcome.state == states.SUCCESS and outcome.written is None
    assert store.log == ["stored SUCCESS"]
    deferred = Executor(app, defer_writes=True)(
        TaskRequest(message=TaskMessage(id="t2", task="t.add", args=(2, 2)), queue="celery")
    )
    assert deferred.written is not None and store.log[-1] == "handed over SUCCESS"
    deferred.written.wait()
    assert app.AsyncResult("t2").get(timeout=1) == 4


def test_a_write_still_under_way_holds_up_its_own_message_only(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """The settler parks the outcome and settles the others meanwhile (a task with no
    record to write among them); the parked message is settled once its write finished."""

    store.held.add("slow")
    with worker_thread(app, concurrency=2):
        slow = add.apply_async((1, 1), task_id="slow")
        wait_for(lambda: "handed over SUCCESS" in store.log, 10, "the first task ran")
        quick = add.apply_async((2, 2), ignore_result=True)
        wait_for(lambda: "ack" in store.log, 10, "the second task acknowledged")
        assert store.log == ["handed over SUCCESS", "ack"]  # the first one is parked
        assert app.transport.queue_length("celery") == 0 and quick.id != slow.id
        store.release.set()
        assert slow.get(timeout=10) == 2
        wait_for(lambda: store.log.count("ack") == 2, 10, "the first task acknowledged")
    assert store.log == ["handed over SUCCESS", "ack", "written SUCCESS", "ack"]


def test_a_stop_gives_back_a_message_whose_write_is_still_under_way(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """The stop gives a write under way a moment (STOP_GRACE), then the message goes back,
    unacknowledged, and the stop is over."""

    store.held.add("stuck")
    with worker_thread(app, shutdown_timeout=0.2):  # the warm stop turns cold at once
        add.apply_async((1, 1), task_id="stuck")
        wait_for(lambda: "handed over SUCCESS" in store.log, 10, "the task ran")
    assert store.log == ["handed over SUCCESS", "reject"]  # given back, never acknowledged
    assert app.transport.queue_length("celery") == 1


def test_a_failed_write_of_an_early_acknowledged_task_is_logged(
    app: Celeriac, store: DeferredResults, caplog: pytest.LogCaptureFixture
) -> None:
    store.failures = 1

    @app.task(acks_late=False)
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app):
        add.delay(1, 1)
        wait_for(lambda: "write failed" in store.log, 10, "the write was waited for")
    assert "could not be written" in caplog.text
    assert "acknowledged when it started" in caplog.text


def test_a_task_with_callbacks_writes_its_record_before_sending_them(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """Were the write to fail after the callback went out, the rerun would send it again."""

    with worker_thread(app):
        result = add.apply_async((1, 1), link=add.s(10))
        assert result.get(timeout=10) == 2
        wait_for(lambda: "written SUCCESS" in store.log, 10, "the callback finished")
    assert store.log[0] == "stored SUCCESS"  # the task with a callback: written at once
    assert "handed over SUCCESS" in store.log  # the callback itself has none: handed over


def test_an_executor_in_a_forked_process_writes_before_it_returns(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """A pool's child forked from the worker reports outcomes as fields, without the write."""

    executor = Executor(app, defer_writes=True)
    request = TaskRequest(message=TaskMessage(id="t1", task="t.add", args=(1, 2)), queue="celery")

    def child() -> None:
        outcome = executor(request)
        assert outcome.written is None and store.log == ["stored SUCCESS"]

    assert in_forked_child(child) == 0
    assert executor(request).written is not None  # here, in the worker's process, handed over


def test_an_executor_handing_to_a_carrier_does_so_in_a_forked_process_too(
    app: Celeriac, store: DeferredResults, add: Any
) -> None:
    """``Executor(hand_to=...)``: a pool child whose records cross to the worker with its
    reports (prefork) hands final records, and only final ones, to what the pool gave it,
    even in a process forked from the one that made the executor; a task with callbacks
    still writes first."""
    carried = DeferredResults()
    executor = Executor(app, hand_to=carried)
    request = TaskRequest(message=TaskMessage(id="t1", task="t.add", args=(1, 2)), queue="celery")

    def child() -> None:
        outcome = executor(request)
        assert outcome.written is not None and carried.log == ["handed over SUCCESS"]
        assert store.log == []  # the app's own store got nothing

    assert in_forked_child(child) == 0
    failed = executor(TaskRequest(message=TaskMessage(id="t2", task="t.add", args=(1,)), queue="celery"))
    assert failed.state == states.FAILURE and failed.written is not None
    linked = TaskMessage(id="t3", task="t.add", args=(1, 1), embed=Embed(callbacks=(add.s(1).to_dict(),)))
    assert executor(TaskRequest(message=linked, queue="celery")).written is None
    assert store.log == ["stored SUCCESS"] and carried.log == ["handed over FAILURE"]


def test_a_parked_write_that_fails_gives_its_message_back(
    app: Celeriac, store: DeferredResults, count: Any
) -> None:
    store.held.add("t1")
    store.failures = 1

    with worker_thread(app):
        result = count.apply_async(task_id="t1")
        wait_for(lambda: "handed over SUCCESS" in store.log, 10, "the task ran")
        store.release.set()
        assert result.get(timeout=10) == 2
        wait_for(lambda: "ack" in store.log, 10, "the rerun acknowledged")
    assert store.log == [
        "handed over SUCCESS",
        "write failed",
        "reject",
        "handed over SUCCESS",
        "written SUCCESS",
        "ack",
    ]


def test_beyond_parked_max_finished_messages_stay_in_the_in_flight_table(
    store: DeferredResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settler holds at most PARKED_MAX messages whose writes are under way; the next
    stay in the in-flight table, whose places the worker fetches against, so a stuck write
    connection stops the worker taking more work."""
    monkeypatch.setattr(settle, "PARKED_MAX", 1)
    transport = MemoryTransport()
    transport.publish("celery", [Envelope(body=b"{}", content_type="application/json") for _ in range(2)])
    table = InFlightTable()
    settler = Settler(transport, table, EventDispatcher([], "test"))
    for token, delivery in enumerate(transport.fetch(["celery"], 2, 1.0), start=1):
        request = TaskRequest(message=TaskMessage(id=f"t{token}", task="t.add"), queue="celery", token=token)
        table.add(InFlight(request=request, delivery=delivery, acks_late=True))
        store.held.add(request.id)
        record = ResultRecord(
            task_id=request.id, state=states.SUCCESS, payload=b"1", content_type="application/json"
        )
        settler.done(Outcome(request=request, state=states.SUCCESS, written=Write(store, record)))
    settler.settle(block=False)
    assert len(table) == 1  # t1 taken out and held; t2 left in the table
    store.release.set()
    settler.settle(block=False)
    settler.settle(block=False)
    assert len(table) == 0
    assert store.log == ["written SUCCESS", "written SUCCESS"]
    assert transport.queue_length("celery") == 0 and transport.dead_letters() == []
