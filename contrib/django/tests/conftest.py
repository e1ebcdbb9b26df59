"""Django configured once for these tests: celeriac_django and a small app of the tests' own
(``djtestapp``: a model and a ``tasks.py``) on a SQLite file, and a PostgreSQL database of the
run's own as the alias ``pg`` when the local server answers (dropped at the end); the memory
broker."""

from __future__ import annotations

import secrets
import sys
import tempfile
from collections.abc import Iterator
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
    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "db.sqlite3")}}
    pg = _postgres_database()
    if pg is not None:
        config.stash[PG_KEY] = pg
        databases["pg"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": pg,
            "HOST": "127.0.0.1",
            "USER": "postgres",
        }
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
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
        DATABASES=databases,
        ROOT_URLCONF="djtestapp.urls",
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CELERIAC={"broker": "memory://", "result_store": "memory://"},
    )
    django.setup()
    from django.core.management import call_command

    for alias in databases:
        call_command("migrate", run_syncdb=True, verbosity=0, database=alias)


PG_KEY = pytest.StashKey[str]()


def _postgres_database() -> str | None:
    """A database of this run's own on the local PostgreSQL, or None when it does not answer."""
    import psycopg

    name = f"celeriac_django_tests_{secrets.token_hex(5)}"
    try:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        return None
    return name


def pytest_unconfigure(config: pytest.Config) -> None:
    name = config.stash.get(PG_KEY, None)
    if name is None:
        return
    from django.db import connections

    connections.close_all()
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def _project_app_stays_current() -> Iterator[None]:
    """An app built by a test, or run by a worker, becomes the process's current one (the app
    ``@shared_task`` tasks act on): the project's is made so before and after each test, also
    when tests of other suites built apps earlier in the process."""
    from celeriac_django import get_app

    get_app().set_current()
    get_app().set_default()
    yield
    get_app().set_current()
    get_app().set_default()


@pytest.fixture
def pg_alias() -> str:
    """The alias of the PostgreSQL database (skips, or fails under CI=true, without the server)."""
    from django.conf import settings

    from celeriac.testing import service_unreachable

    if "pg" not in settings.DATABASES:
        service_unreachable("no PostgreSQL at 127.0.0.1:5432")
    return "pg"
