"""Shared tasks and the current app: ``@shared_task`` for code that does not know its app.

A reusable library (or a Django app) declares its tasks with ``@shared_task`` instead of
``@app.task``, since it cannot import the project's app. Each declaration is registered into
every app alive at that moment and into every app created later; calling the returned proxy
resolves to the task of the *current* app.

The current app is this thread's (``app.set_current()``), else the process default
(``app.set_default()``, and every app on construction unless ``set_as_current=False``): the
same order as Celery. This is the one deliberate piece of process-wide state in the kernel,
kept in one object (:data:`_STATE`) since a shared task has nothing else to find its app by.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import Generic
from typing import ParamSpec
from typing import TypeVar
from typing import overload

from attrs import frozen

from celeriac._model.errors import ConfigError

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.canvas import Signature
    from celeriac._client.canvas_build import Chunks
    from celeriac._client.result import ResultHandle
    from celeriac._client.task import Task

P = ParamSpec("P")
R = TypeVar("R")


@frozen
class SharedDeclaration:
    """What ``@shared_task(...)`` was given, replayed into each app as ``app.task(...)``."""

    fn: Callable[..., Any]
    name: str | None
    bind: bool
    options: Mapping[str, Any]


class _Local(threading.local):
    app: Celeriac | None = None


class _CurrentState:
    """The current app (per thread, then per process), the live apps and the declarations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local = _Local()
        self.default: Celeriac | None = None
        self.apps: weakref.WeakSet[Celeriac] = weakref.WeakSet()
        self.declarations: list[SharedDeclaration] = []

    def adopt(self, app: Celeriac, *, set_as_current: bool) -> None:
        """A new app: give it every shared task so far, and make it the default if asked."""
        with self.lock:
            self.apps.add(app)
            declarations = list(self.declarations)
            if set_as_current:
                self.default = app
        for declaration in declarations:
            _register(app, declaration)

    def declare(self, declaration: SharedDeclaration) -> None:
        with self.lock:
            self.declarations.append(declaration)
            apps = list(self.apps)
        for app in apps:
            _register(app, declaration)

    def current(self) -> Celeriac:
        app = self.local.app or self.default
        if app is None:
            raise ConfigError(
                "no current app: create a Celeriac app (or call app.set_current()) before "
                "using a shared task; a shared task runs on the current app"
            )
        return app


_STATE = _CurrentState()


def _register(app: Celeriac, declaration: SharedDeclaration) -> None:
    """Register into ``app`` unless it already has a task of that name: an app's own
    ``@app.task`` of the same name wins, also when it comes later (it replaces this one)."""
    name = declaration.name or app._task_name(declaration.fn)
    if name not in app.tasks:
        app.task(name=name, bind=declaration.bind, **declaration.options)(declaration.fn)
        app._from_shared.add(name)


def adopt_app(app: Celeriac, *, set_as_current: bool) -> None:
    """Called by ``Celeriac.__init__``: register the shared tasks, maybe become the default."""
    _STATE.adopt(app, set_as_current=set_as_current)


def set_current_app(app: Celeriac | None) -> None:
    """Make ``app`` current in this thread (None: fall back to the process default)."""
    _STATE.local.app = app


def set_default_app(app: Celeriac | None) -> None:
    """Make ``app`` the process default: current in every thread that set none."""
    with _STATE.lock:
        _STATE.default = app


def current_app() -> Celeriac:
    """The app shared tasks resolve to: this thread's current app, else the process default.

    Raises :class:`ConfigError` when no app has been created.
    """
    return _STATE.current()


class SharedTask(Generic[P, R]):
    """A shared task: stands for the task of the same function in the current app.

    Calling, ``delay``, ``apply_async``, ``s`` ... act on ``current_app().tasks[name]``;
    any other attribute is read from that task too.
    """

    def __init__(self, declaration: SharedDeclaration) -> None:
        self._declaration = declaration
        self.__wrapped__ = declaration.fn
        self.__doc__ = declaration.fn.__doc__
        self.__name__ = getattr(declaration.fn, "__name__", "task")
        self.__module__ = declaration.fn.__module__
        self.__qualname__ = getattr(declaration.fn, "__qualname__", self.__name__)

    def __repr__(self) -> str:
        return f"<shared task {self._declaration.name or self.__qualname__}>"

    def resolve(self, app: Celeriac | None = None) -> Task[P, R]:
        """This task in ``app`` (default: the current app), registering it there if needed."""
        target = app if app is not None else current_app()
        name = self._declaration.name or target._task_name(self._declaration.fn)
        task = target.tasks.get(name)
        if task is None:
            _register(target, self._declaration)
            task = target.tasks[name]
        return task

    @property
    def name(self) -> str:
        return self.resolve().name

    @property
    def app(self) -> Celeriac:
        return current_app()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.resolve()(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> ResultHandle:
        return self.resolve().delay(*args, **kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> ResultHandle:
        return self.resolve().apply_async(args, kwargs, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.resolve().s(*args, **kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.resolve().si(*args, **kwargs)

    signature = s

    def map(self, items: Iterable[Any]) -> Signature:
        return self.resolve().map(items)

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        return self.resolve().starmap(items)

    def chunks(self, items: Iterable[Any], size: int) -> Chunks:
        return self.resolve().chunks(items, size)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # not during unpickling or copying, before __init__
            raise AttributeError(attribute)
        return getattr(self.resolve(), attribute)


@overload
def shared_task(fn: Callable[P, R], /) -> SharedTask[P, R]: ...


@overload
def shared_task(
    *, name: str | None = None, bind: bool = False, **options: Any
) -> Callable[[Callable[P, R]], SharedTask[P, R]]: ...


def shared_task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    bind: bool = False,
    **options: Any,
) -> Any:
    """Declare a task for whichever app is current: ``@shared_task`` or ``@shared_task(bind=True)``.

    Options are those of ``app.task``. The task is registered into every app that exists and
    every app created later; the returned proxy acts on the current app's task.
    """

    def declare(function: Callable[..., Any]) -> SharedTask[Any, Any]:
        declaration = SharedDeclaration(fn=function, name=name, bind=bind, options=dict(options))
        _STATE.declare(declaration)
        return SharedTask(declaration)

    return declare(fn) if fn is not None else declare
