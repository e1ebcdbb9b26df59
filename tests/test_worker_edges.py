"""Regression tests for the edges of the worker: shutdown, early acks, hooks, retries, plugins."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from typing import ClassVar

import pytest
from attrs import frozen

from celeriac import Celeriac
from celeriac import MaxRetriesExceededError
from celeriac import PluginError
from celeriac import SerializationError
from celeriac import TaskCall
from celeriac import states
from celeriac import testing
from celeriac._client.publish import Outgoing
from celeriac.plugin import Config
from celeriac.plugin import StartLedger
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.testing import join
from celeriac.testing import worker_thread


def make_app(*plugins: object, **settings: Any) -> Celeriac:
    return Celeriac(
        "tests", broker="memory://", plugins=[testing, *plugins], env={}, config=False, **settings
    )


def test_shutdown_timeout_turns_cold_and_gives_the_message_back() -> None:
    app = make_app(worker={"shutdown_timeout": 0.3})
    release = threading.Event()
    started = threading.Event()

    @app.task
    def stuck() -> None:
        started.set()
        release.wait(10)

    stuck.delay()
    try:
        with worker_thread(app, concurrency=1):
            assert started.wait(5)
            began = time.monotonic()  # the stop, not the worker's start, is what is timed
        assert time.monotonic() - began < 3  # the task would hold a warm stop for 10 s
        assert app.transport.queue_length("celery") == 1
    finally:
        release.set()


def test_early_ack_keeps_reserved_messages_on_shutdown() -> None:
    app = make_app()
    started = threading.Event()
    release = threading.Event()

    @app.task(acks_late=False)
    def slow() -> None:
        started.set()
        # Runs until the stop has landed: a first run that ended before it (it slept 1 s)
        # let the next reserved one start, acknowledged, leaving three on the queue.
        release.wait(10)

    for _ in range(5):
        slow.delay()
    try:
        with worker_thread(app, concurrency=1, prefetch=4) as worker:
            assert started.wait(5)
            testing.wait_for(
                lambda: (a := worker.activity()) is not None and a.held == 5, 10, "four reserved"
            )
            worker.stop()  # warm: the reserved ones go back at once, while the first one runs on
            testing.wait_for(lambda: app.transport.queue_length("celery") == 4, 10, "the reserved given back")
            release.set()
    finally:
        release.set()
    # One ran (acknowledged as it started); the four reserved ones are back on the queue.
    assert app.transport.queue_length("celery") == 4


def test_results_turned_off_still_runs_each_task_once() -> None:
    app = make_app(result_store="")
    runs: list[int] = []
    done = threading.Event()

    @app.task
    def count() -> None:
        runs.append(1)
        done.set()

    assert app.result_store_url is None
    count.delay()
    with worker_thread(app) as worker:
        assert done.wait(5)
        join(worker)  # a second run would be a message still to settle
    assert runs == [1]
    assert app.transport.queue_length("celery") == 0
    assert app.transport.dead_letters() == []


def test_retry_can_change_queue_and_priority() -> None:
    app = make_app()
    seen: list[tuple[str, int | None]] = []

    @app.task(bind=True)
    def move(self: TaskCall) -> str:
        assert self.request is not None
        seen.append((self.request.queue, self.request.message.priority))
        if self.request.retries == 0:
            raise self.retry(countdown=0, queue="other", priority=7)
        return "moved"

    with worker_thread(app, queues=("celery", "other")):
        assert move.delay().get(timeout=5) == "moved"
    assert seen == [("celery", None), ("other", 7)]


def test_eager_retry_runs_again_inline_without_publishing() -> None:
    app = make_app(task_always_eager=True)

    @app.task(bind=True, max_retries=2)
    def flaky(self: TaskCall) -> int:
        assert self.request is not None
        if self.request.retries < 2:
            raise self.retry(exc=ValueError("again"))
        return self.request.retries

    assert flaky.delay().get() == 2
    assert app.transport.queue_length("celery") == 0

    @app.task(bind=True, max_retries=1)
    def hopeless(self: TaskCall) -> None:
        raise self.retry(exc=ValueError("never"))

    with pytest.raises(MaxRetriesExceededError, match="gave up after 1 retries"):
        hopeless.delay()


def test_priority_zero_is_not_replaced_by_the_default() -> None:
    app = make_app(default_priority=5)

    @app.task(priority=0)
    def low() -> None:
        pass

    low.delay()
    [delivery] = app.transport.fetch(["celery"], 1, 1.0)
    assert delivery.envelope.properties["priority"] == 0


def test_a_failing_task_hook_does_not_change_the_outcome(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def celeriac_task_success(self) -> None:
            raise RuntimeError("monitoring is down")

    app = make_app(Broken())
    runs: list[int] = []

    @app.task
    def once() -> int:
        runs.append(1)
        return 1

    with worker_thread(app) as worker:
        assert once.delay().get(timeout=5) == 1
        join(worker)  # a second run would be a message still to settle
    assert runs == [1]
    assert "plugin hook celeriac_task_success failed" in caplog.text
    assert app.transport.queue_length("celery") == 0


def test_autoretry_calls_the_retry_and_failure_hooks() -> None:
    calls: list[tuple[int, str]] = []  # (the run's retries, the hook)

    class Recorder:
        @hookimpl
        def celeriac_task_retry(self, request: TaskRequest, reason: BaseException) -> None:
            calls.append((request.retries, f"retry {reason!r}"))

        @hookimpl
        def celeriac_task_failure(self, request: TaskRequest, exception: BaseException) -> None:
            calls.append((request.retries, f"failure {type(exception).__name__}"))

        @hookimpl
        def celeriac_task_postrun(self, request: TaskRequest, state: str) -> None:
            calls.append((request.retries, f"postrun {state}"))

    app = make_app(Recorder())

    @app.task(autoretry_for=(ConnectionError,), max_retries=1, default_retry_delay=0.01)
    def down() -> None:
        raise ConnectionError("refused")

    with worker_thread(app) as worker:
        result = down.delay()
        with pytest.raises(MaxRetriesExceededError):
            result.get(timeout=5)
        join(worker)  # the last run's hooks, through to its acknowledgement
    # Each run's hooks in order; the two runs' in either order: the rerun is sent before the
    # first run's hooks are called, and may run on another pool thread before they are.
    assert [hook for retries, hook in calls if retries == 0] == [
        "retry ConnectionError('refused')",
        "postrun RETRY",
    ]
    assert [hook for retries, hook in calls if retries == 1] == [
        "failure MaxRetriesExceededError",
        "postrun FAILURE",
    ]
    assert len(calls) == 4


def step_named(step_name: str) -> object:
    @frozen
    class Step:
        name: ClassVar[str] = step_name
        requires: ClassVar[frozenset[str]] = frozenset()

        def enabled(self, config: Config) -> bool:
            return True

        def run(self, ctx: Any) -> Any:
            raise NotImplementedError

    return Step()


def test_two_plugins_with_the_same_bootstep_name_is_an_error() -> None:
    class One:
        @hookimpl
        def celeriac_add_bootsteps(self) -> Sequence[object]:
            return [step_named("shared.step")]

    class Two:
        @hookimpl
        def celeriac_add_bootsteps(self) -> Sequence[object]:
            return [step_named("shared.step")]

    app = make_app(One(), Two())
    with pytest.raises(PluginError, match=r"One' and '.*Two' both provide the bootstep 'shared\.step'"):
        app.worker().blueprint()


def test_two_serializers_claiming_one_content_type_is_an_error() -> None:
    class Clash:
        name = "other-json"
        content_type = "application/json"
        content_encoding = "utf-8"

        def dumps(self, value: Any) -> bytes:
            raise NotImplementedError

        def loads(self, data: bytes) -> Any:
            raise NotImplementedError

    class Plugin:
        @hookimpl
        def celeriac_add_serializers(self) -> Sequence[object]:
            return [Clash()]

    with pytest.raises(PluginError, match="both claim the content type 'application/json'"):
        make_app(Plugin())


def test_states_precedence_matches_celery() -> None:
    assert states.precedence(states.SUCCESS) < states.precedence(states.FAILURE)
    assert states.precedence(states.FAILURE) < states.precedence(states.STARTED)
    assert states.precedence(states.STARTED) < states.precedence(states.PENDING)
    assert states.precedence("CUSTOM") < states.precedence(states.REVOKED)


class FlakyAcks(testing.MemoryTransport):
    """A broker whose acknowledgements fail a given number of times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def ack(self, deliveries: Sequence[Any]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker went away")
        super().ack(deliveries)


@pytest.mark.parametrize("acks_late", [True, False])
def test_failed_acks_do_not_stop_the_worker(acks_late: bool, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(visibility_timeout=0.5)
    app._transport = FlakyAcks(failures=1)  # the app's broker, replaced before first use

    @app.task(acks_late=acks_late)
    def echo(n: int) -> int:
        return n

    with worker_thread(app, concurrency=2):
        assert [echo.delay(n).get(timeout=10) for n in range(5)] == list(range(5))
    assert "failed" in caplog.text


def test_retry_keeps_the_task_serializer() -> None:
    class Tagged:
        name = "json-tagged"
        content_type = "application/x-json-tagged"
        content_encoding = "utf-8"

        def dumps(self, value: Any) -> bytes:
            import json

            return json.dumps(value).encode()

        def loads(self, data: bytes) -> Any:
            import json

            return json.loads(data)

    class Plugin:
        @hookimpl
        def celeriac_add_serializers(self) -> Sequence[object]:
            return [Tagged()]

    app = make_app(Plugin(), accept=["json-tagged"], result_serializer="json-tagged")

    @app.task(bind=True, serializer="json-tagged")
    def again(self: TaskCall) -> int:
        assert self.request is not None
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return self.request.retries

    with worker_thread(app):
        assert again.delay().get(timeout=5) == 1
    assert app.transport.dead_letters() == []


def test_eager_mode_autoretries() -> None:
    app = make_app(task_always_eager=True)
    calls: list[int] = []

    @app.task(autoretry_for=(ConnectionError,), max_retries=2)
    def down() -> None:
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(MaxRetriesExceededError):
        down.delay()
    assert len(calls) == 3


def test_reading_results_when_they_are_off_says_so() -> None:
    app = make_app(result_store="")
    with pytest.raises(Exception, match=r"results are turned off"):
        app.AsyncResult("x").get(timeout=0.1)


def test_solo_cold_shutdown_does_not_wait_for_the_running_task() -> None:
    app = make_app(worker={"shutdown_timeout": 0.3})
    started = threading.Event()
    release = threading.Event()

    @app.task
    def long() -> None:
        started.set()
        release.wait(10)

    long.delay()
    try:
        with worker_thread(app, pool="solo"):
            assert started.wait(5)
            began = time.monotonic()  # the stop, not the worker's start, is what is timed
        assert time.monotonic() - began < 3  # the task would hold a warm stop for 10 s
        assert app.transport.queue_length("celery") == 1  # given back, not lost
    finally:
        release.set()


def test_each_success_is_logged_like_celery(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()

    @app.task(name="tests.seven")
    def seven() -> int:
        return 7

    with caplog.at_level("INFO", logger="celeriac.worker"), worker_thread(app):
        result = seven.delay()
        result.get(timeout=5)
    assert f"Task tests.seven[{result.id}] succeeded in" in caplog.text
    assert caplog.text.rstrip().count(": 7") >= 1


def test_a_message_arriving_just_before_its_eta_waits_for_it() -> None:
    """A producer that did not ask the broker to delay (a Celery client on RabbitMQ) sends a
    task due in half a second: the worker holds it until then, it does not start early."""
    app = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False)
    started: list[float] = []

    @app.task(name="t.stamp")
    def stamp() -> None:
        started.append(time.time())

    with worker_thread(app):
        message = app.build_message("t.stamp", countdown=0.5)
        assert message.eta is not None
        app.publish([Outgoing(message=message, route="celery", delay_from_eta=False)])  # visible at once
        app.AsyncResult(message.id).get(timeout=10)
    assert started[0] >= message.eta.timestamp() - 0.01
    app.close()


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_return_value_the_result_serializer_cannot_carry_fails_the_task_once(pool: str) -> None:
    """As in Celery: FAILURE with the serializer's error, the message acknowledged; it used to
    come back until max_deliveries, running the task each time."""
    app = make_app()
    runs: list[int] = []

    @app.task(autoretry_for=(Exception,), max_retries=3)
    def unstorable() -> object:
        runs.append(1)
        return object()

    @app.task
    def fine() -> int:
        return 1

    with worker_thread(app, pool=pool, concurrency=2) as worker:
        result = unstorable.delay()
        with pytest.raises(SerializationError, match="cannot encode an object of type object"):
            result.get(timeout=5)
        assert fine.delay().get(timeout=5) == 1
        join(worker)  # a redelivery or a retry would be a message still to settle
    assert result.state == states.FAILURE
    assert runs == [1]
    assert app.transport.queue_length("celery") == 0


class _SingleStore:
    """A store without ``store_many`` (a plugin's that predates BatchStore)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.stored: list[str] = []

    def store(self, record: Any) -> None:
        self.stored.append(record.task_id)
        self._inner.store(record)

    def __getattr__(self, name: str) -> Any:
        if name == "store_many":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_finishing_several_requests_works_with_a_store_that_cannot_batch() -> None:
    from celeriac.plugin import Executor
    from celeriac.plugin import TaskMessage
    from celeriac.plugin import TaskRequest

    app = make_app()

    @app.task(name="t.double")
    def double(n: int) -> int:
        return 2 * n

    single = _SingleStore(app.result_store)
    app._result_store = single  # type: ignore[assignment]
    executor = Executor(app)
    messages = [TaskMessage(id=f"r{n}", task="t.double", args=(n,)) for n in range(3)]
    requests = [TaskRequest(message=message, queue="celery") for message in messages]
    outcomes = executor.finish([executor.run(request) for request in requests])
    assert [o.state for o in outcomes] == [states.SUCCESS] * 3
    assert single.stored == ["r0", "r1", "r2"]
    assert [app.AsyncResult(f"r{n}").get(timeout=1) for n in range(3)] == [0, 2, 4]


def ledger_app(tmp_path: Any) -> Celeriac:
    """An app on SQLite (whose transport keeps a start ledger) whose messages come back
    0.2 s after a worker took them and died, dead-lettered at the third start."""
    return Celeriac(
        "tests",
        broker=f"sqlite:///{tmp_path / 'broker.sqlite3'}",
        result_store=f"sqlite:///{tmp_path / 'results.sqlite3'}",
        plugins=[testing],
        env={},
        config=False,
        visibility_timeout=0.2,
        worker={"max_deliveries": 3},
    )


def test_a_redelivered_task_that_finishes_has_its_starts_forgotten(tmp_path: Any) -> None:
    """A task whose message came back (its worker died) and that then finishes is not a
    poison: its recorded starts go before its message is acknowledged, so a worker that dies
    between the two does not leave it counted towards ``max_deliveries`` (it was dead-lettered
    on its next delivery, though it had succeeded)."""
    app = ledger_app(tmp_path)

    @app.task(acks_late=True)
    def fine() -> str:
        return "done"

    transport = app.transport
    assert isinstance(transport, StartLedger)
    result = fine.delay()
    assert transport.fetch(["celery"], 1, 1.0)  # a worker that took it and died
    key = f"{result.id}:0"
    transport.record_start(key)  # ... and one that started it again, and died too
    try:
        with worker_thread(app) as worker:
            assert result.get(timeout=10) == "done"
            join(worker)
        assert transport.starts(key) == 0
        assert transport.dead_letters() == []
    finally:
        app.close()


def test_a_worker_that_dies_between_finishing_and_acknowledging_does_not_poison_the_task(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault docs/guarantees.md names: the task's starts were forgotten, its message was
    not acknowledged (here the acknowledgement fails, as if the worker died just then), so
    the message comes back; it runs again, and is not dead-lettered as a poison's, though it
    has now been started as often as ``max_deliveries`` allows."""
    app = ledger_app(tmp_path)
    runs: list[str] = []

    @app.task(acks_late=True)
    def fine() -> str:
        runs.append("ran")
        return "done"

    transport = app.transport
    assert isinstance(transport, StartLedger)
    ack = transport.ack
    failed: list[int] = []

    def ack_that_dies_once(deliveries: Sequence[Any]) -> None:
        if not failed:
            failed.append(len(deliveries))
            raise ConnectionError("the worker died before its acknowledgement went out")
        ack(deliveries)

    monkeypatch.setattr(transport, "ack", ack_that_dies_once)
    result = fine.delay()
    assert transport.fetch(["celery"], 1, 1.0)  # a first worker took it and died
    transport.record_start(f"{result.id}:0")  # a second one started it and died too
    try:
        with worker_thread(app) as worker:
            assert result.get(timeout=10) == "done"  # the third start: finished, not acked
            testing.wait_for(lambda: len(runs) == 2, 10, "the message back and run once more")
            join(worker)
        assert failed == [1]
        assert transport.dead_letters() == []
        assert transport.queue_length("celery") == 0
    finally:
        app.close()
