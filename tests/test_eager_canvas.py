"""Workflows in eager mode (``task_always_eager``, ``primitive.apply()``): run in this thread,
in a worker's order, with a worker's rules for arguments, callbacks and failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ChordError
from celeriac import NotRegisteredError
from celeriac import chain
from celeriac import chord
from celeriac import group
from celeriac import signature
from celeriac import states
from celeriac._client.eager import EagerResult
from celeriac._client.eager_canvas import EagerGroupResult


def make_app(**settings: Any) -> Celeriac:
    # No transport plugin at all: anything that tried to publish would fail.
    return Celeriac(
        "eager", broker="nowhere://", plugins=[], env={}, config=False, task_always_eager=True, **settings
    )


@pytest.fixture
def calls() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def app(calls: list[tuple[str, Any]]) -> Iterator[Celeriac]:
    instance = make_app()
    register(instance, calls)
    yield instance
    instance.close()


def register(app: Celeriac, calls: list[tuple[str, Any]]) -> None:
    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        calls.append(("add", (x, y)))
        return x + y

    @app.task(name="t.total")
    def total(values: list[int]) -> int:
        calls.append(("total", values))
        return sum(values)

    @app.task(name="t.boom")
    def boom(*args: Any) -> None:
        calls.append(("boom", args))
        raise ValueError("boom")

    @app.task(name="t.seen")
    def seen(*args: Any) -> None:
        calls.append(("seen", args))


def s(app: Celeriac, name: str, *args: Any) -> Any:
    return app.tasks[name].s(*args)


def test_a_chain_passes_each_result_on_and_honours_partials_and_immutables(
    app: Celeriac, calls: list[tuple[str, Any]]
) -> None:
    workflow = chain(
        s(app, "t.add", 1), s(app, "t.add", 10), app.tasks["t.add"].si(100, 200), s(app, "t.add", 5)
    )
    result = workflow.apply_async((2,))  # partial: add(2, 1)
    assert isinstance(result, EagerResult)
    assert result.get() == 305
    assert calls == [("add", (2, 1)), ("add", (3, 10)), ("add", (100, 200)), ("add", (300, 5))]


def test_a_group_returns_every_result_in_order(app: Celeriac) -> None:
    result = group(s(app, "t.add", n, n) for n in range(5)).delay()
    assert isinstance(result, EagerGroupResult)
    assert result.get() == [0, 2, 4, 6, 8]
    assert len(result) == 5 and result.ready() and result.successful()
    assert result.completed_count() == 5


def test_a_chord_gives_the_body_the_header_results_in_order(app: Celeriac) -> None:
    result = chord([s(app, "t.add", n, 1) for n in range(4)], s(app, "t.total")).delay()
    assert result.get() == 1 + 2 + 3 + 4
    nested = chain(s(app, "t.add", 1, 1), group(s(app, "t.add", 10), s(app, "t.add", 20)), s(app, "t.total"))
    assert nested.delay().get() == (2 + 10) + (2 + 20)  # a group followed by a step is a chord


def test_callbacks_get_the_result_and_frozen_ids_are_kept(
    app: Celeriac, calls: list[tuple[str, Any]]
) -> None:
    frozen = s(app, "t.add", 2, 3).link(s(app, "t.seen")).freeze()
    result = frozen.delay()
    assert result.id == frozen.id
    assert result.get() == 5
    assert ("seen", (5,)) in calls


def test_the_first_failure_reaches_the_caller_and_nothing_after_it_runs(
    app: Celeriac, calls: list[tuple[str, Any]]
) -> None:
    with pytest.raises(ValueError, match="boom"):
        chain(s(app, "t.add", 1, 1), s(app, "t.boom"), s(app, "t.add", 1)).delay()
    assert [name for name, _ in calls] == ["add", "boom"]


def test_without_propagation_failures_are_results_and_errbacks_run(calls: list[tuple[str, Any]]) -> None:
    app = make_app(task_eager_propagates=False)
    register(app, calls)
    failing = s(app, "t.boom").link_error(s(app, "t.seen")).freeze()
    stopped = chain(s(app, "t.add", 1, 1), failing, s(app, "t.add", 1)).delay()
    assert stopped.state == states.FAILURE
    assert isinstance(stopped.result, ValueError)
    assert ("seen", (failing.id,)) in calls  # Celery's classic errback: the failed task's id
    assert [name for name, _ in calls].count("add") == 1  # the step after the failure never ran
    body = s(app, "t.total").link_error(s(app, "t.seen")).freeze()
    broken = chord([s(app, "t.add", 1, 1), s(app, "t.boom")], body).delay()
    assert broken.state == states.FAILURE and broken.id == body.id
    with pytest.raises(ChordError, match="boom"):
        broken.get()
    assert ("seen", (body.id,)) in calls
    assert not any(name == "total" for name, _ in calls)


def test_an_unregistered_task_is_named(app: Celeriac) -> None:
    with pytest.raises(NotRegisteredError, match=r"'elsewhere\.task' is not registered"):
        chain(s(app, "t.add", 1, 1), signature("elsewhere.task", app=app)).delay()


def test_apply_runs_eagerly_without_the_setting(calls: list[tuple[str, Any]]) -> None:
    app = Celeriac("eager", broker="nowhere://", plugins=[], env={}, config=False)
    register(app, calls)
    assert chord([s(app, "t.add", 1, 2)], s(app, "t.total")).apply().get() == 3
    assert group(s(app, "t.add", 1, 2), s(app, "t.add", 3, 4)).apply().get() == [3, 7]


def test_a_lone_signature_of_a_task_elsewhere_is_sent_as_send_task_sends_it(tmp_path: Any) -> None:
    """As in Celery: an eager app still sends what it cannot run, one task at a time."""
    app = Celeriac(
        "eager", broker=f"sqlite:///{tmp_path}/b.sqlite3", env={}, config=False, task_always_eager=True
    )
    try:
        result = signature("elsewhere.task", args=(1,), app=app).delay()
        assert result.state == states.PENDING
        assert app.transport.queue_length("celery") == 1
    finally:
        app.close()
