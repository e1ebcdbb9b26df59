"""The worker on the in-memory broker: results, refusals, expiry, ETA, retries, hooks, shutdown."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import MaxRetriesExceededError
from celeriac import NotRegisteredError
from celeriac import TaskCall
from celeriac import TaskError
from celeriac import TaskRevokedError
from celeriac import states
from celeriac import testing
from celeriac._model.errors import TimeoutError  # noqa: A004
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Envelope
from celeriac.plugin import TaskMessage
from celeriac.plugin import hookimpl
from celeriac.testing import wait_for
from celeriac.testing import worker_thread


class CustomError(Exception):
    pass


def test_result_and_failure_round_trip(app: Celeriac) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom(code: int) -> None:
        raise CustomError("broken", code)

    with worker_thread(app, concurrency=2):
        assert add.delay(2, 3).get(timeout=5) == 5
        failed = boom.delay(7)
        with pytest.raises(CustomError) as info:
            failed.get(timeout=5)
        assert info.value.args == ("broken", 7)
        assert failed.state == states.FAILURE
        assert failed.failed() and failed.ready() and not failed.successful()
        assert "CustomError: ('broken', 7)" in (failed.traceback or "")
        assert isinstance(failed.get(propagate=False), CustomError)


def test_exception_types_not_importable_become_task_error(app: Celeriac) -> None:
    record = app.results.encode("t1", states.FAILURE, None)
    payload = json.loads(record.payload)
    payload["result"] = {"exc_type": "Gone", "exc_module": "not.loaded.module", "exc_message": ["x"]}
    app.result_store.store(
        type(record)(
            task_id="t1",
            state=states.FAILURE,
            payload=json.dumps(payload).encode(),
            content_type="application/json",
        )
    )
    with pytest.raises(TaskError, match=r"not\.loaded\.module\.Gone: x"):
        app.AsyncResult("t1").get(timeout=1)


def test_pending_and_timeout(app: Celeriac) -> None:
    result = app.AsyncResult("never-sent")
    assert result.state == states.PENDING
    assert result.result is None
    with pytest.raises(TimeoutError, match=r"not ready after 0\.1"):
        result.get(timeout=0.1)


def test_unregistered_task_fails_and_is_dead_lettered(app: Celeriac) -> None:
    with worker_thread(app):
        result = app.send_task("no.such.task", (1,))
        with pytest.raises(NotRegisteredError, match=r"unregistered task 'no\.such\.task'"):
            result.get(timeout=5)
    [letter] = app.transport.dead_letters()
    assert letter.envelope.headers["task"] == "no.such.task"
    assert "unregistered task" in letter.reason
    assert app.transport.requeue_dead_letter(letter.id)
    assert app.transport.queue_length("celery") == 1


def test_dead_letters_are_purged_by_queue_or_all(app: Celeriac) -> None:
    with worker_thread(app, queues=("celery", "other")):
        for queue in ("celery", "celery", "other"):
            result = app.send_task("no.such.task", queue=queue)
            with pytest.raises(NotRegisteredError):
                result.get(timeout=5)
    transport = app.transport
    assert isinstance(transport, DeadLetterPurger)
    assert transport.purge_dead_letters("celery") == 2
    assert [letter.queue for letter in transport.dead_letters()] == ["other"]
    assert transport.purge_dead_letters() == 1
    assert transport.dead_letters() == []


def test_malformed_message_is_dead_lettered_and_worker_goes_on(app: Celeriac) -> None:
    @app.task
    def ping() -> str:
        return "pong"

    app.transport.publish(
        "celery",
        [
            Envelope(
                body=b"{not json", content_type="application/json", headers={"task": ping.name, "id": "bad-1"}
            )
        ],
    )
    with worker_thread(app):
        assert ping.delay().get(timeout=5) == "pong"
        assert app.AsyncResult("bad-1").state == states.FAILURE
    [letter] = app.transport.dead_letters()
    assert "cannot decode message" in letter.reason


def test_refused_content_type_is_dead_lettered(app: Celeriac) -> None:
    app.transport.publish(
        "celery",
        [
            Envelope(
                body=b"\x80\x04N.",
                content_type="application/x-python-serialize",
                headers={"task": "tests.ping", "id": "pickled"},
            )
        ],
    )
    with worker_thread(app):
        wait_for(app.transport.dead_letters, 5, "a dead letter")
    [letter] = app.transport.dead_letters()
    assert "refused content type 'application/x-python-serialize'" in letter.reason
    assert app.AsyncResult("pickled").state == states.FAILURE


def test_unserializable_argument_is_refused_at_the_caller(app: Celeriac) -> None:
    @app.task
    def echo(value: Any) -> Any:
        return value

    with pytest.raises(Exception, match="object"):
        echo.delay(object())
    assert app.transport.queue_length("celery") == 0


def test_expired_task_is_revoked_not_run(app: Celeriac) -> None:
    ran = threading.Event()

    @app.task
    def work() -> None:
        ran.set()

    result = work.apply_async(expires=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    with worker_thread(app), pytest.raises(TaskRevokedError, match="expired at"):
        result.get(timeout=5)
    assert result.state == states.REVOKED
    assert not ran.is_set()


def test_countdown_delays_execution(app: Celeriac) -> None:
    @app.task
    def stamp() -> float:
        return time.time()

    with worker_thread(app):
        sent = time.time()
        ran_at = stamp.apply_async(countdown=0.5).get(timeout=5)
    assert ran_at - sent >= 0.45


def test_eta_message_from_a_producer_that_did_not_delay_it_is_handed_back(app: Celeriac) -> None:
    @app.task
    def stamp() -> float:
        return time.time()

    eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    message = TaskMessage(id="eta-1", task=stamp.name, eta=eta)
    app.transport.publish("celery", [app.codec.encode_task(message)])  # no transport delay
    with worker_thread(app):
        ran_at = app.AsyncResult("eta-1").get(timeout=5)
    assert ran_at >= eta.timestamp() - 0.05


def test_retry_publishes_again_with_count(app: Celeriac) -> None:
    attempts: list[int] = []

    @app.task(bind=True, max_retries=3)
    def flaky(self: TaskCall) -> int:
        assert self.request is not None
        attempts.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=0.01)
        return self.request.retries

    with worker_thread(app):
        assert flaky.delay().get(timeout=5) == 2
    assert attempts == [0, 1, 2]


def test_autoretry_then_max_retries_exceeded(app: Celeriac) -> None:
    calls: list[int] = []

    @app.task(autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0.01)
    def down() -> None:
        calls.append(1)
        raise ConnectionError("refused")

    with worker_thread(app):
        result = down.delay()
        with pytest.raises(MaxRetriesExceededError, match="gave up after 2 retries: ConnectionError"):
            result.get(timeout=5)
    assert len(calls) == 3


def test_lifecycle_hooks_are_called(app: Celeriac) -> None:
    seen: list[str] = []

    class Recorder:
        @hookimpl
        def celeriac_before_publish(self, message: TaskMessage, queue: str) -> None:
            seen.append(f"publish {message.task} to {queue}")

        @hookimpl
        def celeriac_task_prerun(self, task: Any) -> None:
            seen.append(f"prerun {task.name}")

        @hookimpl
        def celeriac_task_success(self, task: Any, result: Any) -> None:
            seen.append(f"success {result}")

        @hookimpl
        def celeriac_task_postrun(self, task: Any, state: str) -> None:
            seen.append(f"postrun {state}")

    from celeriac import testing

    app = Celeriac("tests", broker="memory://", plugins=[testing, Recorder()], env={}, config=False)

    @app.task(name="tests.one")
    def one() -> int:
        return 1

    with worker_thread(app):
        one.delay().get(timeout=5)
    assert seen == ["publish tests.one to celery", "prerun tests.one", "success 1", "postrun SUCCESS"]


def test_warm_shutdown_finishes_running_task_and_requeues_reserved(app: Celeriac) -> None:
    started = threading.Event()

    release = threading.Event()

    @app.task
    def slow() -> str:
        started.set()
        release.wait(10)
        return "done"

    @app.task
    def later() -> str:
        return "later"

    with worker_thread(app, concurrency=1, prefetch=4) as worker:
        running = slow.delay()
        assert started.wait(5)
        queued = [later.delay() for _ in range(3)]
        # The consumer reserves them behind the running task: four held, none waiting.
        wait_for(lambda: (a := worker.activity()) is not None and a.held == 4, 10, "three reserved")
        worker.stop()  # warm: the reserved ones go back at once, while the running one runs on
        wait_for(lambda: app.transport.queue_length("celery") == 3, 10, "the reserved given back")
        release.set()
    assert running.get(timeout=0) == "done"
    assert all(r.state == states.PENDING for r in queued)
    assert app.transport.queue_length("celery") == 3  # given back at once, not after a lease


def test_early_ack_acknowledges_before_running(app: Celeriac) -> None:
    @app.task(acks_late=False)
    def quick() -> int:
        return 1

    with worker_thread(app):
        assert quick.delay().get(timeout=5) == 1
    assert app.transport.queue_length("celery") == 0


def test_message_redelivered_too_often_is_dead_lettered(app: Celeriac) -> None:
    app_limited = Celeriac(
        "tests",
        broker="memory://",
        plugins=[__import__("celeriac.testing").testing],
        env={},
        config=False,
        worker={"max_deliveries": 2},
        visibility_timeout=0.05,
    )

    @app_limited.task
    def noop() -> None:
        pass

    transport = app_limited.transport
    noop.delay()
    for _ in range(2):  # two deliveries that "crash" (never acked)
        assert transport.fetch(["celery"], 1, 1.0)
        time.sleep(0.06)
    with worker_thread(app_limited):
        wait_for(transport.dead_letters, 5, "a dead letter")
    [letter] = transport.dead_letters()
    assert "delivered 3 times without being acknowledged" in letter.reason


def test_eager_mode_runs_inline(app: Celeriac) -> None:
    from celeriac import testing

    eager = Celeriac(
        "tests", broker="memory://", plugins=[testing], env={}, config=False, task_always_eager=True
    )

    @eager.task
    def mul(x: int, y: int) -> int:
        return x * y

    result = mul.delay(3, 4)
    assert result.get() == 12
    assert result.state == states.SUCCESS
    assert eager.transport.queue_length("celery") == 0
    assert mul.apply((2, 2)).get() == 4
    assert mul(5, 5) == 25


def test_a_task_section_for_no_known_task_is_warned_about_at_start(caplog: pytest.LogCaptureFixture) -> None:
    app = Celeriac(
        "tests",
        broker="memory://",
        plugins=[testing],
        env={},
        config=False,
        tasks={"proj.ad": {"rate_limit": "1/s"}, "proj.add": {"rate_limit": "1/s"}},
    )

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with caplog.at_level("WARNING", logger="celeriac.worker"), worker_thread(app):
        assert add.delay(1, 2).get(timeout=10) == 3
    app.close()
    warned = [r.getMessage() for r in caplog.records if "names no task" in r.getMessage()]
    assert warned == [
        '[tasks."proj.ad"] in the configuration names no task this worker knows: its options '
        "apply to nothing (a typo? the task's module not imported?)"
    ]
