"""``celeriac -A celeriac_django.app:app``: the project's app, with Django set up first.

A module attribute computed on access (PEP 562), so importing this module builds nothing; a
process that was not started by ``manage.py`` (a spawned pool child, ``celeriac -A`` with
``DJANGO_SETTINGS_MODULE`` set) gets Django set up here before the app is built.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from celeriac_django._app import get_app

    return get_app()
