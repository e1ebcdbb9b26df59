"""celeriac for Django: the app built from ``settings.CELERIAC``, tasks found in ``tasks.py``.

Add ``"celeriac_django"`` to ``INSTALLED_APPS``. Importing this package imports nothing of
Django and builds nothing (the ``celeriac.plugins`` entry point loads it in every celeriac
process): :func:`get_app` builds the app the first time it is asked for.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celeriac import Celeriac

try:
    __version__ = _version("celeriac-django")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "get_app"]


def get_app() -> Celeriac:
    """The project's celeriac app (Django set up, ``"celeriac_django"`` in ``INSTALLED_APPS``)."""
    from celeriac_django._app import get_app as _get_app

    return _get_app()
