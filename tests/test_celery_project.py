"""A Celery project written as Celery's docs write it runs on celeriac after changing only its imports.

``tests/celery_project`` is Celery source: ``@shared_task`` tasks, signals for per-child
database connections, logging and failure reports, a canvas, and a Procfile with Celery's
worker flags. The test converts it by rewriting its ``celery`` imports and nothing else,
proves with difflib that only import lines differ, checks the original still loads under
Celery, then runs the Procfile's worker (``celery`` -> ``celeriac``) as a real process and
drives the canvas from a client process.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac._cli.worker_flags import expand_hostname
from celeriac.testing import WorkerProcess
from celeriac.testing import process_group

SOURCE = Path(__file__).parent / "celery_project"

#: The only edits: Celery's modules become celeriac's (``Celery`` keeps its name in the code).
IMPORTS = [
    (re.compile(r"^from celery import Celery$", re.MULTILINE), "from celeriac import Celeriac as Celery"),
    (re.compile(r"^from celery\.signals import ", re.MULTILINE), "from celeriac.signals import "),
    (re.compile(r"^from celery import ", re.MULTILINE), "from celeriac import "),
]


def convert(source: str) -> str:
    for pattern, replacement in IMPORTS:
        source = pattern.sub(replacement, source)
    return source


def is_import(line: str) -> bool:
    return line.startswith(("from ", "import "))


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    target = tmp_path / "converted"
    shutil.copytree(SOURCE, target)
    for path in sorted(target.rglob("*.py")):
        path.write_text(convert(path.read_text()))
    return target


def env_for(project: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "CELERY_"))}
    broker = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    env.update(
        PYTHONPATH=str(project),
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=broker,
        PROJ_DATABASE=str(tmp_path / "proj.sqlite3"),
        COLUMNS="200",
    )
    return env


def test_the_conversion_changes_import_lines_only(converted: Path) -> None:
    changed: list[str] = []
    for original in sorted(SOURCE.rglob("*.py")):
        before = original.read_text().splitlines()
        after = (converted / original.relative_to(SOURCE)).read_text().splitlines()
        for line in difflib.unified_diff(before, after, lineterm="", n=0):
            if line.startswith(("---", "+++", "@@")):
                continue
            assert is_import(line[1:]), f"{original.name}: a non-import line changed: {line!r}"
            changed.append(line)
        assert [x for x in before if not is_import(x)] == [x for x in after if not is_import(x)]
    assert any("celeriac import shared_task" in line for line in changed)
    assert any("celeriac.signals import worker_process_init" in line for line in changed)
    assert not any("celery" in line for line in changed if line.startswith("+"))


def test_the_original_is_a_celery_project(tmp_path: Path) -> None:
    """The source is Celery's: Celery loads it and registers its shared tasks."""
    pytest.importorskip("celery")
    script = "import proj; app = proj.celery_app; app.loader.import_default_modules(); "
    script += "print(type(app).__module__, sorted(n for n in app.tasks if n.startswith('proj.')))"
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        env=env_for(SOURCE, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("celery.app.base ")
    assert "'proj.tasks.add'" in loaded.stdout and "'proj.tasks.flaky'" in loaded.stdout


@pytest.fixture
def worker(converted: Path, tmp_path: Path) -> Iterator[WorkerProcess]:
    """The Procfile's worker, ``celery`` replaced by celeriac's command, in its own process."""
    line = (converted / "Procfile").read_text().strip()
    name, _, command = line.partition(": ")
    assert name == "worker"
    argv = shlex.split(command)
    assert argv[0] == "celery"
    with process_group(converted, env=env_for(converted, tmp_path)) as processes:
        yield processes.start([sys.executable, "-m", "celeriac", *argv[1:]], timeout=60)


def run_client(converted: Path, tmp_path: Path, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=converted,
        env=env_for(converted, tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_converted_project_runs_on_a_celeriac_worker(
    converted: Path, tmp_path: Path, worker: WorkerProcess
) -> None:
    out = run_client(
        converted,
        tmp_path,
        """
        import json
        from proj.tasks import fail, flaky, whose_connection
        from proj.workflows import add_then_multiply, squares, sum_of_doubles

        failed = fail.delay()
        print(json.dumps({
            "chord": sum_of_doubles(5).get(timeout=60),
            "chain": add_then_multiply(1, 2, 10).get(timeout=60),
            "group": squares([1, 2, 3]).get(timeout=60),
            "retry": flaky.delay("x").get(timeout=60),
            "connections": [whose_connection.delay().get(timeout=60) for _ in range(4)],
            "failed": [failed.id, failed.get(timeout=60, propagate=False).__class__.__name__],
        }))
        """,
    )
    results = json.loads(out)
    assert results["chord"] == 20
    assert results["chain"] == 30
    assert results["group"] == [1, 4, 9]
    assert results["retry"] == ["x", 2]
    for child, opener in results["connections"]:
        assert child == opener  # worker_process_init opened it in that very child
        assert child != worker.pid
    failed_id, failed_type = results["failed"]
    assert failed_type == "ValueError"
    output = worker.output()
    assert "proj-log INFO celeriac.worker:" in output  # setup_logging: the project's format
    assert f"task {failed_id} failed: ValueError('expected failure')" in output
    ping = subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", "inspect", "ping", "--json", "--timeout", "5"],
        cwd=converted,
        env=env_for(converted, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(ping.stdout) == {expand_hostname("proj@%h"): {"ok": "pong"}}, ping.stderr
    conf = subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", "inspect", "conf", "--json", "--timeout", "5"],
        cwd=converted,
        env=env_for(converted, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    effective = json.loads(conf.stdout)[expand_hostname("proj@%h")]
    assert effective["prefork"]["max_tasks_per_child"] == 50
    assert effective["task_defaults"]["time_limit"] == 60
    assert effective["worker"]["heartbeat"] is False
