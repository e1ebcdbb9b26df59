"""How the command line finds the app: ``-A module[:attribute]``, ``$CELERIAC_APP``, or ``imports``."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from celeriac._client.app import Celeriac

err_console = Console(stderr=True)


def load_app(app_path: str | None, config: str | None, **overrides: Any) -> Celeriac:
    """Import ``module`` or ``module:attribute`` and return its Celeriac app.

    With no path, ``$CELERIAC_APP`` is used, and failing that a plain app built from the
    configuration (enough to send tasks by name, read results or inspect queues).
    """
    app_path = app_path or os.environ.get("CELERIAC_APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if not app_path:
        return _app_from_imports(Celeriac(config=config, **overrides))
    module_name, _, attribute = app_path.partition(":")
    if config:
        # The app reads its configuration when its module creates it: point it at the file
        # first. An app created with an explicit config= path in code keeps that one.
        os.environ["CELERIAC_CONFIG"] = config
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.UsageError(f"cannot import app module {module_name!r}: {exc}") from exc
    if attribute:
        app = getattr(module, attribute, None)
    else:
        found = [value for value in vars(module).values() if isinstance(value, Celeriac)]
        app = found[0] if len(found) == 1 else None
        if len(found) > 1:
            raise click.UsageError(f"{module_name} has several apps; name one: -A {module_name}:NAME")
    if not isinstance(app, Celeriac):
        raise click.UsageError(f"{app_path!r} is not a Celeriac app (use -A module:attribute)")
    if config and app.config_file is not None and app.config_file.resolve() != Path(config).resolve():
        err_console.print(
            f"warning: {app_path} reads {app.config_file}, not --config {config}", highlight=False
        )
    if app.import_path is None:
        name = attribute or next(key for key, value in vars(module).items() if value is app)
        app.import_path = f"{module_name}:{name}"
    for name in app.config.imports:
        importlib.import_module(name)
    return app


def _app_from_imports(plain: Celeriac) -> Celeriac:
    """With no ``-A``: the one app defined by the modules in ``imports``, else ``plain``.

    Tasks register on the app their module creates, so a worker started as plain
    ``celeriac worker`` with ``imports = ["proj.tasks"]`` must use that module's app.
    """
    apps: list[Celeriac] = []
    for name in plain.config.imports:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.UsageError(f"cannot import {name!r} listed in 'imports': {exc}") from exc
        apps.extend(
            value for value in vars(module).values() if isinstance(value, Celeriac) and value not in apps
        )
    if len(apps) > 1:
        raise click.UsageError("the modules in 'imports' define several apps; choose one with -A module:NAME")
    return apps[0] if apps else plain


def app_for(ctx: click.Context, **overrides: Any) -> Celeriac:
    """The app for a command: ``-A`` and ``--config`` come from the root command's options."""
    return load_app(ctx.obj["app"], ctx.obj["config"], **overrides)
