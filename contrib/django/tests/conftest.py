"""Django configured once for these tests: celeriac_django and a small app of the tests' own
(``djtestapp``: a model and a ``tasks.py``) on a SQLite file; the memory broker."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    folder = Path(tempfile.mkdtemp(prefix="celeriac-django-tests-"))
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.admin",
            "django.contrib.sessions",
            "django.contrib.messages",
            "celeriac_django",
            "celeriac_django.beat",
            "djtestapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "db.sqlite3")}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CELERIAC={"broker": "memory://", "result_store": "memory://"},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
