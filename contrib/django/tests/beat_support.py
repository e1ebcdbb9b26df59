"""Support for the tests of celeriac_django.beat: a database of the test's own (a SQLite file,
or a PostgreSQL database created for the run and dropped after) added to this process's Django
as an extra alias, and a project directory a real ``celeriac beat`` and worker run in."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import textwrap
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celeriac.testing import ProcessGroup
from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import service_unreachable

KINDS = ("sqlite", "postgresql")
#: The local PostgreSQL server (trust authentication); POSTGRES_HOST/PORT override.
PG_HOST = os.environ.get("POSTGRES_HOST", "127.0.0.1")
PG_PORT = os.environ.get("POSTGRES_PORT", "5432")


@contextlib.contextmanager
def beat_database(kind: str, folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(alias, settings)``: a new database, migrated, reachable here as ``alias``.

    ``settings`` is its ``DATABASES`` entry, for a subprocess's Django. A PostgreSQL server
    not answering skips the test (fails under ``CI=true``).
    """
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    name = f"celeriac_djbeat_{secrets.token_hex(5)}"
    if kind == "sqlite":
        config: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(folder / f"{name}.sqlite3"),
            "OPTIONS": {"timeout": 30},
        }
    else:
        _create_pg(name)
        config = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": "postgres",
            "HOST": PG_HOST,
            "PORT": PG_PORT,
        }
    alias = name
    connections.settings[alias] = connections.configure_settings(
        {"default": connections.settings["default"], alias: dict(config)}
    )[alias]
    try:
        executor = MigrationExecutor(connections[alias])
        # This app's migrations alone: no other app's tables, no post_migrate handlers.
        executor.migrate(
            [("celeriac_django_beat", executor.loader.graph.leaf_nodes("celeriac_django_beat")[0][1])]
        )
        yield alias, config
    finally:
        connections[alias].close()
        del connections.settings[alias]
        with contextlib.suppress(AttributeError):
            delattr(connections._connections, alias)
        if kind == "postgresql":
            _drop_pg(name)


def _admin_connection() -> Any:
    import psycopg

    try:
        return psycopg.connect(
            f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres", autocommit=True
        )
    except psycopg.OperationalError as exc:
        service_unreachable(f"no PostgreSQL at {PG_HOST}:{PG_PORT}: {exc}")


def _create_pg(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f"CREATE DATABASE {name}")


def _drop_pg(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


SETTINGS = """
import json
import os

SECRET_KEY = "beat-tests"
USE_TZ = True
INSTALLED_APPS = ["celeriac_django", "celeriac_django.beat", "beatapp"]
DATABASES = {"default": json.loads(os.environ["BEAT_TEST_DATABASE"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CELERIAC = {
    "broker": os.environ["BEAT_TEST_BROKER"],
    "worker": {"poll_timeout": 0.2},
    "beat": {"schedule_store": "django://", "max_interval": 1.0},
}
"""
TASKS = """
import json
import os
import time

from celeriac_django import get_app

app = get_app()


@app.task(bind=True)
def hit(self, label, **kwargs):
    line = json.dumps({"label": label, "kwargs": kwargs, "at": time.time(), "id": self.request.id})
    with open(os.environ["BEAT_TEST_HITS"], "a") as out:
        out.write(line + "\\n")
    return label
"""


MANAGE = """
import sys

from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


def write_project(folder: Path) -> None:
    """A Django project: ``manage.py``, settings from the environment, and ``beatapp.hit``."""
    (folder / "manage.py").write_text(textwrap.dedent(MANAGE))
    (folder / "beatproj_settings.py").write_text(textwrap.dedent(SETTINGS))
    (folder / "beatapp").mkdir()
    (folder / "beatapp" / "__init__.py").write_text("")
    (folder / "beatapp" / "tasks.py").write_text(textwrap.dedent(TASKS))


def project_env(folder: Path, database: dict[str, Any]) -> dict[str, str]:
    from celeriac.testing import subprocess_env

    return subprocess_env(
        folder,
        DJANGO_SETTINGS_MODULE="beatproj_settings",
        BEAT_TEST_DATABASE=json.dumps(database),
        BEAT_TEST_BROKER=f"sqlite:///{folder / 'broker.sqlite3'}",
        BEAT_TEST_HITS=str(folder / "hits.jsonl"),
    )


APP = "celeriac_django.app:app"
TASK = "beatapp.tasks.hit"


def beat_command() -> list[str]:
    """Beat as a Django user starts it (the worker runs as celeriac's own command line)."""
    return [sys.executable, "manage.py", "celeriac", "beat", "-l", "INFO"]


@contextlib.contextmanager
def beat_and_worker(kind: str, folder: Path) -> Iterator[tuple[str, ProcessGroup]]:
    """A project in ``folder`` on a new database, with ``manage.py celeriac beat`` and a
    worker running; yields ``(alias, group)`` (the beat is ``group.started[1]``)."""
    write_project(folder)
    with (
        beat_database(kind, folder) as (alias, config),
        process_group(folder, project_env(folder, config)) as group,
    ):
        group.start(celeriac_command(APP, "worker", "-P", "threads", "-c", "2", "-l", "INFO"))
        group.start(beat_command(), ready="sends from now on", log="beat")
        yield alias, group
        for process in group.started:
            process.stop()


def logs(group: ProcessGroup) -> str:
    """The end of each process's log, for assertion messages."""
    return "\n".join(f"--- {p.log.name}\n{p.output()[-4000:]}" for p in group.started)


def hits(folder: Path, label: str | None = None) -> list[dict[str, Any]]:
    """The runs of ``beatapp.hit`` so far (of ``label``), in the order they ran."""
    path = folder / "hits.jsonl"
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return [hit for hit in found if label is None or hit["label"] == label]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, log: Callable[[], str] = str) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what`` (and the logs)."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s\n{log()}")
        time.sleep(0.05)
