"""A result store that writes later (``DeferredStore``, as ``rpc://``): the worker settles a
task's message only once its final record is written, and gives the message back when the
write fails, so the task runs again rather than finishing without a result."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac.plugin import Config
from celeriac.plugin import DeferredStore
from celeriac.plugin import Executor
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.testing import MemoryResultStore
from celeriac.testing import wait_for
from celeriac.testing import worker_thread


class DeferredResults(MemoryResultStore):
    """Final records are written when the worker waits for them (``failures`` of those
    writes fail first); ``log`` says what happened, in order, acknowledgements included."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.failures = 0

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

    def wait(self) -> None:
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


def logged(app: Celeriac, store: DeferredResults, name: str) -> None:
    """Note each call of the transport's ``name`` in the store's log."""
    original = getattr(app.transport, name)

    def call(deliveries: Any, *args: Any, **kwargs: Any) -> Any:
        store.log.append(name)
        return original(deliveries, *args, **kwargs)

    setattr(app.transport, name, call)


def test_a_final_record_is_handed_over_and_written_before_the_ack(
    app: Celeriac, store: DeferredResults
) -> None:
    assert isinstance(store, DeferredStore)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app):
        assert add.delay(2, 3).get(timeout=10) == 5
        wait_for(lambda: "ack" in store.log, 10, "acknowledged")
    assert store.log == ["handed over SUCCESS", "written SUCCESS", "ack"]


def test_a_write_that_fails_gives_the_message_back_to_run_again(
    app: Celeriac, store: DeferredResults
) -> None:
    store.failures = 1
    runs: list[int] = []

    @app.task
    def count() -> int:
        runs.append(1)
        return len(runs)

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
        wait_for(lambda: store.log[-2:] == ["written SUCCESS", "ack"], 10, "the rerun acknowledged")
    assert store.log.index("stored RETRY") < store.log.index("handed over SUCCESS")
    assert "handed over RETRY" not in store.log


def test_an_executor_not_asked_to_defer_writes_before_it_returns(
    app: Celeriac, store: DeferredResults
) -> None:
    """A pool whose outcomes nobody waits on (the default) gets records written at once."""

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

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
