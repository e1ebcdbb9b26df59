"""Running a task function inside its Flask app's context, as Flask code expects to run."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from flask import Flask


def in_app_context(flask_app: Flask, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped to run in a fresh app context of ``flask_app`` (an ``async def`` stays one).

    A fresh context per run, as on a worker, also when called eagerly inside a request: the
    task gets its own ``g``, and ``teardown_appcontext`` handlers (Flask-SQLAlchemy's
    ``session.remove()``) run when it ends. The signature, name and module are ``fn``'s, so
    the task keeps its name and its argument checks.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with flask_app.app_context():
                return await fn(*args, **kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with flask_app.app_context():
            return fn(*args, **kwargs)

    return run
