"""The printed configuration works: a Celery client on Redis sends, a celeriac worker started
with nothing but the migrated celeriac.toml (and the same task names) runs, Celery reads the result."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import process_group
from celeriac.testing import subprocess_env
from celeriac_redis import testing as redis_testing

from .conftest import Migrate
from .conftest import Project

pytest.importorskip("celery")
pytestmark = [pytest.mark.slow, pytest.mark.integration]

CELERY = """
import os

from celery import Celery

url, prefix = os.environ["MIGRATE_REDIS_URL"], os.environ["MIGRATE_PREFIX"]
app = Celery("proj", broker=url, backend=url, include=["proj.tasks"])
app.conf.update(
    broker_transport_options={"global_keyprefix": prefix},
    result_backend_transport_options={"global_keyprefix": prefix},
    task_routes={"proj.tasks.add": {"queue": "math"}},
    task_acks_late=True,
    worker_concurrency=2,
)
"""
CELERY_TASKS = """
from proj.celery import app


@app.task
def add(x, y):
    return x + y
"""
#: The project moved over: the same modules with celeriac's imports, so the task names (and
#: the migrated `imports`) stay as they were.
MIGRATED = {
    "celery": 'from celeriac import Celeriac\n\napp = Celeriac("proj")\n',
    "tasks": CELERY_TASKS,
}


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    url = redis_testing.require_redis(redis_testing.server_url())
    with redis_testing.private_prefix(url, name="celeriac-migrate-test") as prefix:
        yield url, prefix


def test_a_celery_client_and_a_migrated_worker(
    project: Project, migrate: Migrate, redis_prefix: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, prefix = redis_prefix
    env = {"MIGRATE_REDIS_URL": url, "MIGRATE_PREFIX": prefix}
    directory = project(celery=CELERY, tasks=CELERY_TASKS)
    migrated = directory / "migrated" / "proj"
    migrated.mkdir(parents=True)
    (migrated / "__init__.py").touch()
    for name, source in MIGRATED.items():
        (migrated / f"{name}.py").write_text(source)
    run = migrate(env=env)
    assert run.code == 0, run.err
    assert run.toml["redis"] == {
        "layout": "kombu",
        "kombu_global_keyprefix": prefix,
        "result_key_prefix": prefix,
    }
    assert run.toml["imports"] == ["proj.tasks"]
    worker_env = subprocess_env(migrated.parent, drop=("CELERIAC_", "CELERY_"), CELERIAC_CONFIG=str(run.path))
    with process_group(migrated.parent, worker_env) as group:
        # As a Celery worker is started for a routed queue: -Q math.
        group.start([sys.executable, "-m", "celeriac", "-A", "proj.celery", "worker", "-Q", "math"])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        celery_app = _import(directory, "proj.celery").app
        try:
            result = celery_app.send_task("proj.tasks.add", (2, 3))
            assert result.get(timeout=30) == 5
        finally:
            celery_app.close()


def _import(directory: Path, name: str) -> Any:
    """Import ``name`` from the project without leaving it in sys.modules for other tests."""
    sys.path.insert(0, str(directory))
    try:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(directory))
        for loaded in [key for key in sys.modules if key == "proj" or key.startswith("proj.")]:
            del sys.modules[loaded]
