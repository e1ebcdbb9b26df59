"""The Django app ``celeriac_django.beat`` (label ``celeriac_django_beat``)."""

from __future__ import annotations

from django.apps import AppConfig


class CeleriacDjangoBeatConfig(AppConfig):
    name = "celeriac_django.beat"
    label = "celeriac_django_beat"
    verbose_name = "Periodic tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every save or delete of an entry or a schedule moves the change marker, which beat
        # reads each second; connected here, not at import, so importing models stays inert.
        from celeriac_django.beat._signals import connect

        connect()
