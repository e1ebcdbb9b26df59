"""The project's one celeriac app, built when first asked for and kept by the Django app registry."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from celeriac import Celeriac
from celeriac_django._settings import app_source

if TYPE_CHECKING:
    from celeriac_django.apps import CeleriacDjangoConfig

#: Where ``manage.py celeriac`` and a worker's children find the app (``-A``).
IMPORT_PATH = "celeriac_django.app:app"


class AppHolder:
    """Builds the app once per registry; a lock keeps two threads from building two."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: Celeriac | None = None

    def get(self) -> Celeriac:
        with self._lock:
            if self._app is None:
                self._app = build_app()
            return self._app


def build_app() -> Celeriac:
    """The app named by ``settings.CELERIAC_APP``, else one made from the settings or the file."""
    source = app_source()
    if source.app_path is not None:
        module_name, _, attribute = source.app_path.partition(":")
        app = getattr(importlib.import_module(module_name), attribute, None)
        if not isinstance(app, Celeriac):
            raise ImproperlyConfigured(f"settings.CELERIAC_APP {source.app_path!r} is not a Celeriac app")
        if app.import_path is None:
            app.import_path = source.app_path
        return app
    from celeriac_django.task import DjangoTask

    app = Celeriac("django", config=source.config, task_cls=DjangoTask, **source.overrides)
    app.import_path = IMPORT_PATH
    return app


def get_app() -> Celeriac:
    """The project's celeriac app (Django must be set up, ``celeriac_django`` installed)."""
    if not apps.is_installed("celeriac_django"):
        raise ImproperlyConfigured('add "celeriac_django" to INSTALLED_APPS to use celeriac_django')
    config: CeleriacDjangoConfig = apps.get_app_config("celeriac_django")
    return config.holder.get()
