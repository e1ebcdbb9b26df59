"""``@shared_task``: tasks declared without an app, registered into every app, run on the current one."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import SharedTask
from celeriac import TaskCall
from celeriac import current_app
from celeriac import shared_task
from celeriac._client.shared import _CurrentState
from celeriac.testing import join
from celeriac.testing import worker_thread


def make_app(**settings: Any) -> Celeriac:
    return Celeriac("tests", env={}, config=False, broker="memory://", **settings)


def test_a_shared_task_is_registered_into_apps_created_before_and_after() -> None:
    before = make_app()

    @shared_task
    def double(x: int) -> int:
        return 2 * x

    after = make_app()
    name = f"{__name__}.{double.__qualname__}"
    assert before.tasks[name].fn is double.__wrapped__
    assert after.tasks[name].fn is double.__wrapped__
    assert double(4) == 8  # called directly: runs here, as an app task does
    before.close()
    after.close()


def test_the_proxy_resolves_to_the_current_app() -> None:
    first = make_app()
    second = make_app()  # the latest app built is the default

    @shared_task(name="shared.echo")
    def echo(value: str) -> str:
        return value

    assert current_app() is second
    assert echo.resolve().app is second
    assert echo.s("a").app is second
    first.set_default()
    assert echo.resolve().app is first
    assert echo.name == "shared.echo"
    assert isinstance(echo, SharedTask)
    first.close()
    second.close()


def test_set_current_is_per_thread_over_the_process_default() -> None:
    default = make_app()
    mine = make_app(set_as_current=False)
    assert current_app() is default
    seen: list[Celeriac] = []

    def other_thread() -> None:
        mine.set_current()
        seen.append(current_app())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert seen == [mine]
    assert current_app() is default  # this thread did not change
    default.close()
    mine.close()


def test_options_and_bind_pass_to_each_app_and_an_apps_own_task_wins() -> None:
    app = make_app()

    @app.task(name="shared.taken")
    def own() -> str:
        return "own"

    @shared_task(name="shared.taken")
    def shared() -> str:
        return "shared"

    @shared_task(bind=True, name="shared.bound", queue="special", max_retries=7)
    def bound(self: TaskCall, x: int) -> str:
        return f"{self.name}:{x}"

    assert app.tasks["shared.taken"].fn is own.__wrapped__
    assert app.tasks["shared.bound"].options.queue == "special"
    assert app.tasks["shared.bound"].options.max_retries == 7
    assert bound(3) == "shared.bound:3"
    app.close()


def test_a_shared_task_runs_on_a_worker_and_delay_goes_to_the_current_apps_broker() -> None:
    app = make_app()

    @shared_task(bind=True, name="shared.add")
    def add(self: TaskCall, x: int, y: int) -> int:
        assert self.app is app
        return x + y

    with worker_thread(app, pool="threads", concurrency=2) as worker:
        result = add.delay(2, 3)
        chained = (add.s(1, 1) | add.s(10)).apply_async()
        join(worker)
        assert result.get(timeout=5) == 5
        assert chained.get(timeout=5) == 12
    app.close()


def test_without_any_app_the_error_says_to_create_one() -> None:
    with pytest.raises(ConfigError, match="no current app: create a Celeriac app"):
        _CurrentState().current()


def test_an_apps_own_task_declared_after_a_shared_one_of_the_same_name_replaces_it() -> None:
    @shared_task(name="shared.later")
    def shared() -> str:
        return "shared"

    app = make_app()
    assert app.tasks["shared.later"].fn is shared.__wrapped__

    @app.task(name="shared.later")
    def own() -> str:
        return "own"

    assert app.tasks["shared.later"].fn is own.__wrapped__
    twice = r"'shared.later' is registered twice: first .*own at .*test_shared_task"
    with pytest.raises(ValueError, match=twice):

        @app.task(name="shared.later")
        def again() -> str:
            return "again"

    app.close()
