"""The Flask extension: one celeriac app per Flask app, made by ``init_app`` from its config."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any
from typing import ParamSpec
from typing import TypeVar
from typing import overload

from flask import Flask
from flask import current_app
from flask import has_app_context

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac_flask._cli import celeriac_command
from celeriac_flask._config import read_flask_config
from celeriac_flask._context import in_app_context
from celeriac_flask._fork import forget_connections_after_fork
from celeriac_flask._task import Declaration
from celeriac_flask._task import FlaskTask

P = ParamSpec("P")
R = TypeVar("R")

#: Where ``init_app`` puts the celeriac app: ``flask_app.extensions["celeriac"]``.
EXTENSION_KEY = "celeriac"


class FlaskCeleriac:
    """celeriac for a Flask application, in the application-factory pattern.

    Create it once at module level, declare tasks on it with :meth:`task`, and call
    :meth:`init_app` in the factory: each Flask app gets its own :class:`celeriac.Celeriac`
    built from its config, in ``app.extensions["celeriac"]``, with every declared task
    registered to run inside that Flask app's context. A process forked from this one (a
    prefork pool's child) drops the app's inherited Flask-SQLAlchemy connections.

    :param app: a Flask app to initialise at once (the single-app pattern).
    :param plugins: plugin objects registered on every celeriac app made here, besides the
        installed ones (as ``Celeriac(plugins=...)``).
    """

    def __init__(self, app: Flask | None = None, *, plugins: Iterable[object] = ()) -> None:
        self.plugins = tuple(plugins)
        self._declared: dict[str, Declaration] = {}
        # The Flask apps initialised so far, so a task declared after init_app (its module
        # imported later) still reaches them; weak, as tests make and drop apps by the dozen.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build ``app``'s celeriac app from its config and register the declared tasks on it.

        Raises :class:`~celeriac.ConfigError` naming the Flask app and the bad key.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(f"celeriac is already initialised on the Flask app {app.name!r}")
        try:
            flask_settings = read_flask_config(app.config)
            celeriac_app = Celeriac(
                app.import_name,
                config=flask_settings.file,
                plugins=self.plugins,
                **flask_settings.settings,
            )
        except ConfigError as exc:
            raise ConfigError(f"celeriac configuration of the Flask app {app.name!r}: {exc}") from exc
        for declaration in self._declared.values():
            _register(celeriac_app, app, declaration)
        app.extensions[EXTENSION_KEY] = celeriac_app
        if "celeriac" not in app.cli.commands:
            app.cli.add_command(celeriac_command)
        forget_connections_after_fork(app)
        self._apps.add(app)

    def app_for(self, app: Flask | None = None) -> Celeriac:
        """The celeriac app of ``app``, or of the current Flask app context when none is given."""
        if app is None:
            if not has_app_context():
                raise RuntimeError(
                    "no Flask app context: celeriac tasks are sent through the current Flask app's "
                    "celeriac app; call this in a request or CLI command, inside "
                    "`with app.app_context():`, or pass the app"
                )
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        celeriac_app = app.extensions.get(EXTENSION_KEY)
        if not isinstance(celeriac_app, Celeriac):
            raise RuntimeError(
                f"the Flask app {app.name!r} has no celeriac app: call FlaskCeleriac.init_app(app) "
                "in its factory"
            )
        return celeriac_app

    @overload
    def task(self, fn: Callable[P, R], /) -> FlaskTask[P, R]: ...

    @overload
    def task(
        self, *, name: str | None = None, bind: bool = False, **options: Any
    ) -> Callable[[Callable[P, R]], FlaskTask[P, R]]: ...

    def task(  # type: ignore[misc]  # the overloads split the two decorator forms
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Declare a task: ``@celeriac.task`` or ``@celeriac.task(name=..., queue=...)``.

        Options are those of ``Celeriac.task``. The task is registered on the celeriac app of
        every Flask app this extension initialises (and has initialised), and runs inside that
        Flask app's context wherever it runs: a worker's thread, a prefork child, eager mode.
        """

        def declare(function: Callable[..., Any]) -> FlaskTask[Any, Any]:
            declaration = Declaration(
                fn=function,
                name=name or f"{function.__module__}.{function.__qualname__}",
                bind=bind,
                options=dict(options),
            )
            if declaration.name in self._declared:
                raise ValueError(f"task {declaration.name!r} is declared twice")
            self._declared[declaration.name] = declaration
            for app in list(self._apps):
                _register(self.app_for(app), app, declaration)
            return FlaskTask(self, declaration)

        return declare(fn) if fn is not None else declare


def _register(celeriac_app: Celeriac, flask_app: Flask, declaration: Declaration) -> None:
    register = celeriac_app.task(name=declaration.name, bind=declaration.bind, **declaration.options)
    register(in_app_context(flask_app, declaration.fn))
