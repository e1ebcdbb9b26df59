"""Canvas on a real worker: chains, groups, chords, callbacks, map/starmap/chunks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac import states
from celeriac import testing
from celeriac.app import Celeriac
from celeriac.canvas import Signature
from celeriac.canvas import chain
from celeriac.canvas import chord
from celeriac.canvas import group
from celeriac.canvas import signature
from celeriac.errors import ChordError
from celeriac.testing import worker_thread


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celeriac]:
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    instance = Celeriac("tests", broker=broker, plugins=[testing], env={}, config=False)
    yield instance
    instance.close()


class Tasks:
    def __init__(self, app: Celeriac) -> None:
        self.calls: list[str] = []
        self.errbacks: list[str] = []

        @app.task(name="t.add")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="t.tsum")
        def tsum(values: list[int]) -> int:
            self.calls.append("tsum")
            return sum(values)

        @app.task(name="t.fail")
        def fail(x: int = 0) -> None:
            raise ValueError(f"bad {x}")

        @app.task(name="t.record_error")
        def record_error(task_id: str) -> None:
            self.errbacks.append(task_id)

        @app.task(name="t.const")
        def const() -> str:
            return "const"

        self.add, self.tsum, self.fail, self.record_error, self.const = add, tsum, fail, record_error, const


@pytest.fixture
def tasks(app: Celeriac) -> Tasks:
    return Tasks(app)


def test_signature_is_celerys_dict(app: Celeriac, tasks: Tasks) -> None:
    sig = tasks.add.s(2).set(queue="math", countdown=5)
    assert sig.to_dict() == {
        "task": "t.add",
        "args": [2],
        "kwargs": {},
        "options": {"queue": "math", "countdown": 5},
        "subtask_type": None,
        "immutable": False,
    }
    again = signature(sig.to_dict(), app=app)
    assert again == sig
    assert sig.clone((3,)).args == (2, 3)
    assert tasks.add.si(1, 1).immutable


def test_partial_signature_runs(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        assert tasks.add.s(2).delay(3).get(timeout=5) == 5
        assert signature("t.add", (4, 4), app=app).apply_async().get(timeout=5) == 8


def test_chain_passes_results_and_walks_back(app: Celeriac, tasks: Tasks) -> None:
    workflow = tasks.add.s(2, 2) | tasks.add.s(4) | chain(tasks.add.s(8), tasks.add.s(16))
    assert len(workflow.tasks) == 4  # nested chains flatten
    with worker_thread(app):
        last = workflow.delay()
        assert last.get(timeout=10) == 32
        values = []
        node: Any = last
        while node is not None:
            values.append(node.get(timeout=5))
            node = node.parent
    assert values == [32, 16, 8, 4]


def test_immutable_step_ignores_the_previous_result(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        assert (tasks.add.s(1, 1) | tasks.const.si()).delay().get(timeout=5) == "const"


def test_chain_stops_at_a_failure(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        last = (tasks.fail.s() | tasks.add.s(1)).delay()
        with pytest.raises(ValueError, match="bad 0"):
            last.parent.get(timeout=5)  # type: ignore[union-attr]
    assert last.state == states.PENDING


def test_group_results_in_order_published_in_one_call(app: Celeriac, tasks: Tasks) -> None:
    publishes: list[int] = []
    original = app.transport.publish

    def counting(queue: str, envelopes: Sequence[Any], **kwargs: Any) -> None:
        publishes.append(len(envelopes))
        original(queue, envelopes, **kwargs)

    app.transport.publish = counting  # type: ignore[method-assign]
    with worker_thread(app):
        result = group(tasks.add.s(i, i) for i in range(20)).delay()
        assert publishes == [20]
        assert result.get(timeout=10) == [2 * i for i in range(20)]
        assert result.ready() and result.successful()
        assert result.completed_count() == 20
        restored = app.GroupResult(result.id)
        assert [r.id for r in restored] == [r.id for r in result]


def test_chord_runs_its_body_once_with_ordered_results(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app, concurrency=4):
        result = chord(group(tasks.add.s(i, i) for i in range(10)), tasks.tsum.s()).delay()
        assert result.get(timeout=10) == 90
    assert tasks.calls == ["tsum"]
    assert [r.get(timeout=1) for r in result.parent] == [2 * i for i in range(10)]  # type: ignore[union-attr]


def test_failed_header_gives_a_chord_error_and_runs_errbacks(app: Celeriac, tasks: Tasks) -> None:
    header = [tasks.add.s(1, 1), tasks.fail.s(7), tasks.add.s(2, 2)]
    body = tasks.tsum.s().link_error(tasks.record_error.s())
    with worker_thread(app):
        result = chord(header, body).delay()
        with pytest.raises(ChordError, match=r"header task .* ended FAILURE"):
            result.get(timeout=10)
        done = threading.Event()
        for _ in range(100):
            if tasks.errbacks:
                break
            done.wait(0.05)
    assert tasks.calls == []
    assert tasks.errbacks == [result.id]


def test_revoked_header_task_fails_the_chord_instead_of_hanging(app: Celeriac, tasks: Tasks) -> None:
    header = group(tasks.add.s(1, 1), tasks.add.s(2, 2))
    first_id = "header-0"
    header = group(header.tasks[0].set(task_id=first_id), header.tasks[1])
    with worker_thread(app):
        for _ in range(50):  # until the worker has subscribed, so the revoke reaches it
            if app.control.ping(timeout=0.2, limit=1):
                break
        app.control.revoke(first_id)
        assert app.control.ping(timeout=5, limit=1)  # handled in order: the revoke is in
        result = chord(header, tasks.tsum.s()).delay()
        with pytest.raises(ChordError, match="ended REVOKED"):
            result.get(timeout=10)


def test_link_and_link_error_on_plain_tasks(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        tasks.add.s(2, 3).link(tasks.add.s(10)).delay()
        failing = tasks.fail.s(1).link_error(tasks.record_error.s()).delay()
        with pytest.raises(ValueError):
            failing.get(timeout=5)
        for _ in range(100):
            if tasks.errbacks:
                break
            threading.Event().wait(0.05)
    assert tasks.errbacks == [failing.id]


def test_map_starmap_and_chunks(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        assert tasks.tsum.map([[1, 2], [3]]).delay().get(timeout=5) == [3, 3]
        assert tasks.add.starmap([(1, 1), (2, 2)]).delay().get(timeout=5) == [2, 4]
        parts = tasks.add.chunks([(i, i) for i in range(7)], 3).delay()
        assert parts.get(timeout=5) == [[0, 2, 4], [6, 8, 10], [12]]


def test_signatures_need_an_app() -> None:
    with pytest.raises(ValueError, match="has no app"):
        Signature(task="x").delay()


def test_chord_needs_a_counting_result_store(tasks: Tasks, app: Celeriac) -> None:
    off = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, result_store="")
    body = Signature(task="t.tsum", app=off)
    with pytest.raises(Exception, match="chords need a result store"):
        chord([Signature(task="t.add", args=(1, 1), app=off)], body).delay()
