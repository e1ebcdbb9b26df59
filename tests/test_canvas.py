"""Canvas on a real worker: chains, groups, chords, callbacks, map/starmap/chunks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac import AsyncResult
from celeriac import Celeriac
from celeriac import ChordError
from celeriac import GroupResult
from celeriac import Ignore
from celeriac import Signature
from celeriac import TaskCall
from celeriac import chain
from celeriac import chord
from celeriac import group
from celeriac import signature
from celeriac import states
from celeriac import testing
from celeriac._client.canvas_wire import from_dict
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

        @app.task(name="t.plus_100", bind=True)
        def plus_100(call: TaskCall, x: int) -> None:
            call.replace(add.s(x, 100))

        @app.task(name="t.fan_out", bind=True)
        def fan_out(call: TaskCall, x: int) -> None:
            call.replace(group(add.s(x, 1), add.s(x, 2)))

        @app.task(name="t.spawn")
        def spawn(n: int) -> int:
            for i in range(n):
                add.delay(i, i)
            return n

        @app.task(name="t.skip")
        def skip() -> None:
            raise Ignore()

        self.add, self.tsum, self.fail, self.record_error, self.const = add, tsum, fail, record_error, const
        self.plus_100, self.fan_out, self.spawn, self.skip = plus_100, fan_out, spawn, skip


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
    assert sig.clone((3,)).args == (3, 2)  # partial arguments come first, as in Celery
    assert tasks.add.si(1, 1).clone((3,)).args == (1, 1)  # immutable: none added
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


# --- nesting ---------------------------------------------------------------------------


def test_a_group_followed_by_a_task_in_a_chain_becomes_a_chord(app: Celeriac, tasks: Tasks) -> None:
    workflow = chain(
        tasks.add.s(1, 1), group(tasks.add.s(1), tasks.add.s(2)), tasks.tsum.s(), tasks.add.s(10)
    )
    assert [type(step).__name__ for step in workflow.tasks] == ["Signature", "Chord", "Signature"]
    with worker_thread(app, concurrency=2):
        result = workflow.delay()
        assert result.get(timeout=10) == 17  # add(tsum([add(2, 1), add(2, 2)]), 10)
        assert result.parent.get(timeout=1) == 7
        header = result.parent.parent
        assert isinstance(header, GroupResult)
        assert header.get(timeout=1) == [3, 4]
        assert header.parent.get(timeout=1) == 2


def test_a_chain_can_end_in_a_group(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        result = (tasks.add.s(1, 1) | group(tasks.add.s(10), tasks.add.s(20))).delay()
        assert isinstance(result, GroupResult)
        assert result.get(timeout=10) == [12, 22]
        assert result.parent.get(timeout=1) == 2


def test_chords_of_chains_and_chains_of_chords(app: Celeriac, tasks: Tasks) -> None:
    header = [tasks.add.s(1, 1) | tasks.add.s(1), tasks.add.s(2, 2) | tasks.add.s(2)]
    with worker_thread(app, concurrency=2):
        assert chord(header, tasks.tsum.s()).delay().get(timeout=10) == 9  # tsum([3, 6])
        # tsum([3, 6]) = 9 -> add(9, 1) = 10 -> the second chord's header task is add(10, 5).
        two = chain(chord(header, tasks.tsum.s()), tasks.add.s(1), chord([tasks.add.s(5)], tasks.tsum.s()))
        assert two.delay().get(timeout=10) == 15


def test_a_chords_body_can_be_a_chain(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app, concurrency=2):
        result = chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s() | tasks.add.s(100)).delay()
        assert result.get(timeout=10) == 106
        assert result.parent.get(timeout=1) == 6


def test_a_group_of_chords_and_chains(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app, concurrency=2):
        result = group(
            chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s()), tasks.add.s(3, 3) | tasks.add.s(1)
        ).delay()
        assert result.get(timeout=10) == [6, 7]
        # ... and as a chord's header: the inner chord's body counts for the outer chord.
        outer = chord([chord([tasks.add.s(1, 1)], tasks.tsum.s()), tasks.add.s(5, 5)], tasks.tsum.s()).delay()
        assert outer.get(timeout=10) == 12


def test_every_primitive_round_trips_through_celerys_dict(app: Celeriac, tasks: Tasks) -> None:
    workflow = chain(
        tasks.add.s(1, 1),
        group(tasks.add.s(1), tasks.add.s(2) | tasks.add.s(3)),
        tasks.tsum.s().set(queue="q"),
        chord([tasks.add.s(1)], tasks.tsum.s() | tasks.add.s(1)),
    )
    data = workflow.to_dict()
    assert data["subtask_type"] == "chain"
    assert data["kwargs"]["tasks"][1]["subtask_type"] == "chord"
    assert data["kwargs"]["tasks"][1]["kwargs"]["header"]["subtask_type"] == "group"
    assert from_dict(data, app) == workflow
    # Celery may send a chord's header as a plain list of signatures.
    listed = {**data["kwargs"]["tasks"][1]}
    listed["kwargs"] = {**listed["kwargs"], "header": listed["kwargs"]["header"]["kwargs"]["tasks"]}
    assert from_dict(listed, app) == workflow.tasks[1]


def test_a_group_cannot_directly_follow_a_group(tasks: Tasks) -> None:
    with pytest.raises(TypeError, match="must be followed by a task"):
        chain(group(tasks.add.s(1, 1)), group(tasks.add.s(1)))
    with pytest.raises(TypeError, match="cannot be a member of a group"):
        group(group(tasks.add.s(1, 1)), tasks.add.s(1, 1))


# --- replace, children -----------------------------------------------------------------


def test_replace_hands_over_the_id_the_chain_and_chord_membership(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app, concurrency=2):
        replaced = tasks.plus_100.delay(1)
        assert replaced.get(timeout=10) == 101  # the caller's result is the replacement's
        assert (tasks.plus_100.s(1) | tasks.add.s(1)).delay().get(timeout=10) == 102
        assert chord([tasks.plus_100.s(1), tasks.add.s(1, 1)], tasks.tsum.s()).delay().get(timeout=10) == 103
        assert tasks.fan_out.delay(5).get(timeout=10) == [6, 7]  # a group is gathered into a list


def test_replace_keeps_callbacks(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        first = tasks.plus_100.s(1).link(tasks.add.s(1000).set(task_id="after-replace")).delay()
        assert first.get(timeout=10) == 101
        assert app.AsyncResult("after-replace").get(timeout=10) == 1101


def test_replace_needs_a_worker(app: Celeriac, tasks: Tasks) -> None:
    with pytest.raises(RuntimeError, match="needs a worker"):
        tasks.plus_100.apply((1,))


def test_children_and_collect_walk_what_a_task_sent(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app, concurrency=2):
        parent = tasks.spawn.delay(3)
        assert parent.get(timeout=10) == 3
        children = parent.children
        assert children is not None and len(children) == 3
        assert all(isinstance(child, AsyncResult) for child in children)
        collected = [value for _, value in parent.collect(timeout=10)]
        assert collected == [3, 0, 2, 4]
    assert tasks.add.delay(1, 1).children is None  # not finished (no worker): unknown yet


def test_an_ignored_task_starts_no_next_step_but_fails_its_chord(app: Celeriac, tasks: Tasks) -> None:
    with worker_thread(app):
        last = (tasks.skip.si() | tasks.const.si().set(task_id="never")).delay()
        with pytest.raises(ChordError, match="ended missing"):
            chord([tasks.skip.si(), tasks.add.s(1, 1)], tasks.tsum.s()).delay().get(timeout=10)
        assert last.state == states.PENDING
