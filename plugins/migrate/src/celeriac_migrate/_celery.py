"""Reading a Celery app as Celery does: found by name, configured, its settings by their new names."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from celeriac.plugin import ConfigError

if TYPE_CHECKING:
    from celery import Celery

#: Settings Celery computes (a property of its ``Settings``): the environment (``CELERY_BROKER_URL``)
#: or another setting (Django's ``TIME_ZONE``) may give them a value nobody set under their name.
_COMPUTED = ("broker_url", "result_backend", "timezone")


def load_app(spec: str) -> Celery:
    """The Celery app ``spec`` names (``proj.celery:app``, ``proj.celery``, ``proj``), found as
    ``celery -A`` finds it, with the current directory importable as for ``celery -A``.

    Its configuration is read (``config_from_object`` included) and the modules in ``imports``
    and ``include`` are imported, as a worker would, so periodic tasks added in signal handlers
    are there too.
    """
    from celery import Celery
    from celery.app.utils import find_app

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        app = find_app(spec)
    except Exception as exc:  # the project's own code ran: any error is reported as one line
        raise ConfigError(f"cannot import the Celery app {spec!r}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(app, Celery):
        raise ConfigError(f"{spec!r} is a {type(app).__name__}, not a Celery app")
    try:
        app.loader.import_default_modules()
        app.finalize(auto=True)
    except Exception as exc:
        raise ConfigError(
            f"the Celery app {spec!r} imports modules that fail: {type(exc).__name__}: {exc}"
        ) from exc
    return app


def settings(app: Celery) -> dict[str, Any]:
    """Every Celery setting the app sets (under any of its names or namespaces), by its new name.

    A setting counts as set when Celery says a value was given for it, even one equal to its
    default: ``task_acks_late = False`` written out is a choice worth carrying over.
    """
    from celery.app.defaults import DEFAULTS

    conf = app.conf
    found: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        if key in _COMPUTED:
            value = getattr(conf, key)
            if value is not None and (value != default or conf.value_set_for(key)):
                found[key] = value
        elif conf.value_set_for(key) or (key == "beat_schedule" and conf[key]):
            # add_periodic_task adds to the default schedule in place: not "set" for Celery.
            found[key] = conf[key]
    return found


def defaults() -> Mapping[str, Any]:
    """Celery's default for every setting, by its new name."""
    from celery.app.defaults import DEFAULTS

    return dict(DEFAULTS)
