"""The handle ``@celeriac.task`` returns: a task declared before any Flask app exists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import Generic
from typing import ParamSpec
from typing import TypeVar

from attrs import frozen

if TYPE_CHECKING:
    from flask import Flask

    from celeriac import Group
    from celeriac import Signature
    from celeriac import Task
    from celeriac.plugin import ResultHandle
    from celeriac_flask._extension import FlaskCeleriac

P = ParamSpec("P")
R = TypeVar("R")


@frozen(kw_only=True)
class Declaration:
    """A task as declared on the extension, registered on each app the extension is given."""

    fn: Callable[..., Any]
    name: str
    bind: bool
    options: Mapping[str, Any]


class FlaskTask(Generic[P, R]):
    """A task declared with ``@celeriac.task`` on a :class:`FlaskCeleriac`.

    With application factories there is one celeriac app per Flask app, made by ``init_app``;
    each call goes to the task registered on the app of the current Flask app context (in a
    request, a CLI command, a task, ``with app.app_context()``), as Flask-SQLAlchemy's
    ``db.session`` does. :meth:`on` names the Flask app explicitly.
    """

    def __init__(self, extension: FlaskCeleriac, declaration: Declaration) -> None:
        self.extension = extension
        self.declaration = declaration
        self.name = declaration.name
        self.__doc__ = declaration.fn.__doc__
        self.__wrapped__ = declaration.fn

    def __repr__(self) -> str:
        return f"<flask task {self.name}>"

    def on(self, flask_app: Flask | None = None) -> Task[P, R]:
        """The registered task on ``flask_app``'s celeriac app (default: the current Flask app)."""
        task: Task[P, R] = self.extension.app_for(flask_app).tasks[self.name]
        return task

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task here, in a fresh app context of the current Flask app."""
        return self.on()(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> ResultHandle:
        """Queue the task: ``apply_async(args, kwargs)``."""
        return self.on().delay(*args, **kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        expires: float | dt.datetime | None = None,
        **options: Any,
    ) -> ResultHandle:
        """Queue the task, with the options of :meth:`celeriac.Task.apply_async`."""
        return self.on().apply_async(args, kwargs, countdown=countdown, eta=eta, expires=expires, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of a call of this task (chains, groups, chords, callbacks)."""
        return self.on().s(*args, **kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a chain does not pass it the previous result."""
        return self.on().si(*args, **kwargs)

    signature = s

    def apply(
        self, args: tuple[Any, ...] | list[Any] | None = None, kwargs: Mapping[str, Any] | None = None
    ) -> ResultHandle:
        """Run the task here and now (eager), in a fresh app context of the current Flask app."""
        return self.on().apply(args, kwargs)

    def map(self, items: Iterable[Any]) -> Signature:
        return self.on().map(items)

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        return self.on().starmap(items)

    def chunks(self, items: Iterable[Any], size: int) -> Group:
        return self.on().chunks(items, size)
