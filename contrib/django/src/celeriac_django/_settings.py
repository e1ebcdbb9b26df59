"""Where a Django project's celeriac configuration comes from.

- ``settings.CELERIAC``: a dict with the keys of ``celeriac.toml`` (``broker``, ``result_store``,
  ``[worker]`` as ``"worker": {...}`` ...). Given alone, no file is read.
- ``settings.CELERIAC_CONFIG``: the path of a TOML file; ``settings.CELERIAC``, if also given,
  overrides its keys.
- neither: the file celeriac itself looks for (``$CELERIAC_CONFIG``, ``./celeriac.toml``,
  ``[tool.celeriac]`` in ``./pyproject.toml``), else celeriac's defaults.
- ``settings.CELERIAC_APP = "module:attribute"``: the project's own app instead of one built
  here (the explicit form, as Celery's ``proj/celery.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@attrs.frozen
class AppSource:
    """How to make the app: import ``app_path``, else build it from ``config`` and ``overrides``."""

    app_path: str | None
    config: str | bool | None
    overrides: Mapping[str, Any]


def app_source() -> AppSource:
    """Read the three settings, refusing a wrong type with a message naming the setting."""
    app_path = getattr(settings, "CELERIAC_APP", None)
    if app_path is not None and (not isinstance(app_path, str) or ":" not in app_path):
        raise ImproperlyConfigured(
            f'settings.CELERIAC_APP must be "module:attribute" naming a Celeriac app, got {app_path!r}'
        )
    overrides = getattr(settings, "CELERIAC", None)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ImproperlyConfigured(
            f"settings.CELERIAC must be a dict of celeriac.toml's keys, got {type(overrides).__name__}"
        )
    path = getattr(settings, "CELERIAC_CONFIG", None)
    if path is not None and not isinstance(path, str | os.PathLike):
        raise ImproperlyConfigured(f"settings.CELERIAC_CONFIG must be a file path, got {path!r}")
    if path is not None and not Path(path).is_file():
        raise ImproperlyConfigured(f"settings.CELERIAC_CONFIG: {path} does not exist")
    config: str | bool | None
    if path is not None:
        config = str(path)
    elif overrides is not None:
        config = False  # settings.CELERIAC alone is the whole configuration
    else:
        config = None
    return AppSource(app_path=app_path, config=config, overrides=dict(overrides or {}))
