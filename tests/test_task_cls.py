"""Celeriac(task_cls=...): every task of the app, @app.task or @shared_task, is of that class."""

from __future__ import annotations

from typing import Any

from celeriac import Celeriac
from celeriac import Task
from celeriac import shared_task


class Traced(Task[Any, Any]):
    def describe(self) -> str:
        return f"traced {self.name}"


@shared_task
def shared_add(x: int, y: int) -> int:
    return x + y


def test_tasks_are_of_the_apps_task_class() -> None:
    app = Celeriac("cls", broker="memory://", config=False, env={}, task_cls=Traced, set_as_current=False)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert isinstance(add, Traced) and add.describe() == f"traced {add.name}"
    assert add(1, 2) == 3
    assert isinstance(_shared(app), Traced)


def test_default_is_task() -> None:
    app = Celeriac("plain", broker="memory://", config=False, env={}, set_as_current=False)
    assert type(_shared(app)) is Task


def _shared(app: Celeriac) -> Task[Any, Any]:
    (name,) = [name for name in app.tasks if name.endswith(".shared_add")]
    return app.tasks[name]
