"""The Django app ``celeriac_django``: finds each installed app's ``tasks`` module when Django is ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

from celeriac_django._app import AppHolder


class CeleriacDjangoConfig(AppConfig):
    name = "celeriac_django"
    label = "celeriac_django"
    verbose_name = "celeriac"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: object) -> None:
        super().__init__(app_name, app_module)
        self.holder = AppHolder()

    def ready(self) -> None:
        # The app first: it is the current app, the one @shared_task tasks act on, in a web
        # process too (which may never ask for it). Building it connects to nothing.
        self.holder.get()
        # Tasks register when their module is imported: import every installed app's tasks.py
        # (as the admin imports admin.py), so a worker and a web process know the same tasks.
        autodiscover_modules("tasks")
