"""Tasks every app has, named as in Celery: ``celery.map``, ``celery.starmap`` and
``celery.accumulate`` (which gathers a replacing group's results)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


def register_builtins(app: Celeriac) -> None:
    from celeriac._client.canvas import Signature

    def run_map(task: dict[str, Any], it: Iterable[Any]) -> list[Any]:
        """Apply a task's function to each item, here in the worker."""
        target = app.tasks[Signature.from_dict(task).task]
        return [target(item) for item in it]

    def run_starmap(task: dict[str, Any], it: Iterable[Iterable[Any]]) -> list[Any]:
        """Apply a task's function to each argument tuple, here in the worker."""
        target = app.tasks[Signature.from_dict(task).task]
        return [target(*args) for args in it]

    def accumulate(*args: Any, index: int | None = None) -> Any:
        """Its arguments, or the one at ``index``: a chord body that just hands on the results."""
        return args[index] if index is not None else list(args)

    app.task(name="celery.map")(run_map)
    app.task(name="celery.accumulate")(accumulate)
    app.task(name="celery.starmap")(run_starmap)
