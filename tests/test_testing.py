"""The pytest plugin users get: the fixtures and a join() that returns only when all is settled.

Each test checks, right after join() returns and without waiting, that every result is
already stored: a join that returned early would leave some PENDING.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac import states
from celeriac._client.app import Celeriac
from celeriac._contract.specs import TransportSpec
from celeriac._model.errors import TimeoutError as JoinTimeout
from celeriac._model.records import Delivery
from celeriac._worker.worker import Worker
from celeriac.plugin import hookimpl
from celeriac.testing import MemoryTransport
from celeriac.testing import join
from celeriac.testing import project_app
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac.testing import write_project


def stored_state(app: Celeriac, task_id: str) -> str:
    record = app.result_store.get(task_id)
    return states.PENDING if record is None else record.state


def test_join_returns_when_every_task_ran_and_stored(celeriac_app: Celeriac, celeriac_worker: Worker) -> None:
    @celeriac_app.task
    def slow_square(n: int) -> int:
        time.sleep(0.001 * (n % 7))  # uneven run times, so tasks finish out of order
        return n * n

    results = [slow_square.delay(n) for n in range(200)]
    join(celeriac_worker)
    assert [stored_state(celeriac_app, r.id) for r in results] == [states.SUCCESS] * 200
    assert [r.get(timeout=0) for r in results] == [n * n for n in range(200)]


def test_join_waits_for_what_tasks_send_meanwhile(celeriac_app: Celeriac, celeriac_worker: Worker) -> None:
    """Chain steps and retries with a countdown are messages sent by running tasks."""
    attempts: list[int] = []

    @celeriac_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @celeriac_app.task(bind=True, max_retries=3)
    def flaky(self: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise self.retry(countdown=0.2)
        return "done"

    from celeriac._client.canvas import chain

    chained = chain(add.s(1, 2), add.s(3), add.s(4), add.s(5)).apply_async()
    retried = flaky.delay()
    join(celeriac_worker)
    assert stored_state(celeriac_app, chained.id) == states.SUCCESS
    assert chained.get(timeout=0) == 15
    assert stored_state(celeriac_app, retried.id) == states.SUCCESS
    assert len(attempts) == 3


def test_join_names_what_is_left_when_it_times_out(celeriac_app: Celeriac, celeriac_worker: Worker) -> None:
    release = threading.Event()

    @celeriac_app.task
    def blocked() -> None:
        release.wait(10)

    result = blocked.delay()
    with pytest.raises(JoinTimeout, match=r"1 held by"):
        join(celeriac_worker, timeout=0.3)
    release.set()
    join(celeriac_worker)
    assert stored_state(celeriac_app, result.id) == states.SUCCESS


def test_join_refuses_a_queue_the_worker_does_not_consume(celeriac_worker: Worker) -> None:
    with pytest.raises(ValueError, match="does not consume elsewhere"):
        join(celeriac_worker, ["elsewhere"])


def test_join_counts_refused_messages_as_settled(celeriac_app: Celeriac, celeriac_worker: Worker) -> None:
    """An unregistered task is dead-lettered: settled, so join returns."""
    result = celeriac_app.send_task("no.such.task")
    join(celeriac_worker)
    assert celeriac_app.transport.dead_letters()
    assert stored_state(celeriac_app, result.id) == states.FAILURE


class TestOverriddenConfig:
    @pytest.fixture
    def celeriac_config(self) -> dict[str, Any]:
        return {"default_queue": "jobs"}

    @pytest.fixture
    def celeriac_worker_options(self) -> dict[str, Any]:
        return {"concurrency": 3}

    def test_the_app_and_worker_fixtures_build_from_them(
        self, celeriac_app: Celeriac, celeriac_worker: Worker
    ) -> None:
        assert celeriac_app.config.default_queue == "jobs"
        assert celeriac_worker.queues == ("jobs",)
        assert celeriac_worker.config.worker.concurrency == 3


def test_worker_thread_is_consuming_when_it_yields(celeriac_app: Celeriac) -> None:
    with worker_thread(celeriac_app, queues=("jobs", "other")) as worker:
        activity = worker.activity()
        assert activity is not None
        assert activity.held == 0
        result = celeriac_app.send_task("celery.accumulate", args=(1, 2), queue="other")
        join(worker, ["other"])
        assert stored_state(celeriac_app, result.id) == states.SUCCESS


class InTransitTransport(MemoryTransport):
    """``memory://`` whose fetched messages spend 50 ms in transit to the worker, as over a
    network: gone from the queue, not yet held by the worker."""

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        taken = super().fetch(queues, limit, timeout)
        if taken:
            time.sleep(0.05)  # the transit itself, not a synchronisation
        return taken


class InTransitPlugin:
    @hookimpl
    def celeriac_add_transports(self) -> Sequence[TransportSpec]:
        return [TransportSpec(schemes=("in-transit",), factory=lambda url, config: InTransitTransport())]


def test_join_waits_for_messages_in_transit_to_the_worker() -> None:
    app = Celeriac(
        "tests",
        broker="in-transit://",
        result_store="memory://",
        plugins=[InTransitPlugin()],
        env={},
        config=False,
    )

    @app.task
    def echo(n: int) -> int:
        return n

    try:
        with worker_thread(app, concurrency=1, prefetch=1) as worker:
            for _ in range(5):
                result = echo.delay(1)
                join(worker)
                assert stored_state(app, result.id) == states.SUCCESS
    finally:
        app.close()


def test_wait_for_returns_the_first_truthy_value_another_thread_made_true() -> None:
    found: list[str] = []
    timer = threading.Timer(0.05, found.append, ("ready",))
    timer.start()
    try:
        assert wait_for(lambda: list(found), timeout=10, what="the timer's value") == ["ready"]
    finally:
        timer.cancel()


def test_wait_for_fails_naming_what_never_came_within_its_timeout() -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the answer: not within 0.2 s"):
        wait_for(never, 0.2, "the answer", interval=0.01)
    assert calls[-1] - started >= 0.2  # asked once more at the deadline, not given up before it
    assert len(calls) >= 3  # polled, not a single sleep to the deadline


def test_project_app_imports_the_written_project_fresh_and_forgets_it(tmp_path: Path) -> None:
    tasks = """
        from celeriac import Celeriac

        app = Celeriac("proj")


        @app.task
        def add(x, y):
            return x + y
    """
    here = os.getcwd()
    for n, directory in enumerate((tmp_path / "one", tmp_path / "two")):
        directory.mkdir()
        write_project(directory, tasks, f'broker = "sqlite:///broker-{n}.sqlite3"\n')
        with project_app(directory) as app:
            assert os.getcwd() == str(directory)  # relative paths in its config resolve there
            assert app.config.broker == f"sqlite:///broker-{n}.sqlite3"  # each test its own project
            assert "proj.add" in app.tasks
            assert app.send_task("proj.add", (1, 2)).id
            assert app.transport.queue_length("celery") == 1
        assert "proj" not in sys.modules
        assert str(directory) not in sys.path
        assert os.getcwd() == here
