"""A worker on the prefork pool, in this process: results, failures the parent records, requeues.

The broker is ``memory://`` (only the parent talks to it); results go to a SQLite file,
which the children write to and this process reads.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import TimeLimitExceededError
from celeriac import WorkerLostError
from celeriac import states
from celeriac import testing
from celeriac.plugin import Executor
from celeriac.plugin import PoolContext
from celeriac.plugin import Worker
from celeriac.plugin import hookimpl
from celeriac.testing import worker_thread
from celeriac_prefork import PreforkConfig
from celeriac_prefork import PreforkPool


class Ready:
    """Tells when the worker is consuming, so that nothing is published while the zygote forks.

    These apps have no import path, so the zygote is a fork of this process: a thread inside
    SQLite at that instant would leave SQLite's mutex locked in every child (docs/pools.md).
    """

    def __init__(self) -> None:
        self.event = threading.Event()

    @hookimpl
    def celeriac_worker_ready(self, worker: Worker) -> None:
        self.event.set()


@pytest.fixture
def ready() -> Ready:
    return Ready()


@pytest.fixture
def app(tmp_path: Path, ready: Ready) -> Iterator[Celeriac]:
    instance = Celeriac(
        "t",
        broker="memory://",
        result_store=f"sqlite:///{tmp_path / 'results.sqlite3'}",
        plugins=[testing, ready],
        env={},
        config=False,
        prefork={"max_tasks_per_child": 0},
    )
    yield instance
    instance.close()


@contextlib.contextmanager
def prefork_worker(app: Celeriac, ready: Ready, concurrency: int) -> Iterator[None]:
    with worker_thread(app, pool="prefork", concurrency=concurrency):
        assert ready.event.wait(10)
        yield


def test_is_installed_and_configured_from_its_section(app: Celeriac) -> None:
    assert "prefork" in {ep.name for ep in entry_points(group="celeriac.plugins")}
    assert app.config.section("prefork", PreforkConfig) == PreforkConfig()
    with pytest.raises(ConfigError, match="max_task_per_child"):
        Celeriac("t", broker="memory://", env={}, config=False, prefork={"max_task_per_child": 1})


def test_tasks_run_in_children_and_store_their_results(app: Celeriac, ready: Ready) -> None:
    @app.task
    def pid(x: int) -> tuple[int, int]:
        return os.getpid(), x * 2

    with prefork_worker(app, ready, 2):
        results = [pid.delay(n).get(timeout=10) for n in range(10)]
    assert [x for _, x in results] == [n * 2 for n in range(10)]
    children = {p for p, _ in results}
    assert os.getpid() not in children
    assert 1 <= len(children) <= 2


def test_parent_records_worker_lost_and_time_limit(app: Celeriac, ready: Ready) -> None:
    @app.task
    def crash() -> None:
        os._exit(1)

    @app.task(time_limit=0.3)
    def hang() -> None:
        time.sleep(30)

    @app.task
    def ok() -> str:
        return "fine"

    with prefork_worker(app, ready, 1):
        lost, late = crash.delay(), hang.delay()
        with pytest.raises(WorkerLostError, match="exited while running the task"):
            lost.get(timeout=10)
        with pytest.raises(TimeLimitExceededError, match=r"0\.3 s"):
            late.get(timeout=10)
        assert ok.delay().get(timeout=10) == "fine"
    assert lost.state == late.state == states.FAILURE


def test_reject_on_worker_lost_requeues_a_late_acked_task(
    app: Celeriac, ready: Ready, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"

    @app.task(acks_late=True, reject_on_worker_lost=True)
    def flaky() -> int:
        with marker.open("a") as f:
            f.write("x")
        if len(marker.read_text()) == 1:
            os._exit(1)  # the first attempt dies with its child
        return len(marker.read_text())

    with prefork_worker(app, ready, 1):
        assert flaky.delay().get(timeout=10) == 2


def test_factory_reads_the_prefork_section() -> None:
    app = Celeriac(
        "t",
        broker="memory://",
        plugins=[testing],
        env={},
        config=False,
        prefork={"autoscale": "6,2"},
    )
    context = PoolContext(
        config=app.worker().config,
        app=app,
        executor=Executor(app),
        revoked=frozenset(),
        hooks=app.plugins.lifecycle,
    )
    pool = app.plugins.pool("prefork").factory(context)  # type: ignore[call-arg]
    assert isinstance(pool, PreforkPool)
    assert pool.limit == 6
    app.import_path = None
    settings = PreforkConfig(start_method="forkserver")
    with pytest.raises(ConfigError, match="needs the app's import path"):
        PreforkPool(lambda request: None, concurrency=1, settings=settings, app=app)  # type: ignore[arg-type,return-value]


class RecordingSink:
    """Events the worker sends, kept in memory."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    @hookimpl
    def celeriac_add_event_sinks(self) -> list[RecordingSink]:
        return [self]

    def send(self, event: dict[str, object]) -> None:
        self.events.append(dict(event))

    def close(self) -> None:
        """Nothing to release."""


def test_events_carry_the_childs_result_and_traceback(tmp_path: Path, ready: Ready) -> None:
    sink = RecordingSink()
    app = Celeriac(
        "t",
        broker="memory://",
        result_store=f"sqlite:///{tmp_path / 'results.sqlite3'}",
        plugins=[testing, ready, sink],
        env={},
        config=False,
    )

    @app.task
    def double(x: int) -> dict[str, int]:
        return {"double": x * 2}

    @app.task
    def fail() -> None:
        raise KeyError("missing")

    try:
        with worker_thread(app, pool="prefork", concurrency=1, send_events=True):
            assert ready.event.wait(10)
            ok, bad = double.delay(4), fail.delay()
            assert ok.get(timeout=10) == {"double": 8}
            with pytest.raises(KeyError):
                bad.get(timeout=10)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(e["type"] == "task-failed" for e in sink.events):
                time.sleep(0.02)
    finally:
        app.close()
    [succeeded] = [e for e in sink.events if e["type"] == "task-succeeded"]
    assert succeeded["uuid"] == ok.id and succeeded["result"] == "{'double': 8}"
    [failed] = [e for e in sink.events if e["type"] == "task-failed"]
    assert "KeyError" in str(failed["traceback"]) and "raise KeyError" in str(failed["traceback"])
