"""``flask celeriac ...`` and ``celeriac -A celeriac_flask.entry:app``: celeriac's command line
for the Flask app that ``flask --app`` / ``FLASK_APP`` names, in processes of their own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from celeriac.testing import process_group
from celeriac.testing import subprocess_env

PROJECT = """
from flask import Flask, current_app
from celeriac_flask import FlaskCeleriac

celeriac = FlaskCeleriac()


@celeriac.task
def greet(name: str) -> str:
    return f"{current_app.config['GREETING']}, {name}"


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["GREETING"] = "hello"
    app.config["CELERIAC"] = {"broker": "sqlite:///broker.sqlite3", "default_queue": "flaskq"}
    celeriac.init_app(app)
    return app


plain = Flask("plain")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(textwrap.dedent(PROJECT))
    return tmp_path


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=project,
        env=subprocess_env(project, drop=("CELERIAC_", "FLASK_")),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flask_celeriac_runs_a_worker_and_calls_for_the_flask_app(project: Path) -> None:
    flask = ["flask", "--app", "proj:create_app"]
    with process_group(project, subprocess_env(project, drop=("CELERIAC_", "FLASK_"))) as group:
        worker = group.start(
            [sys.executable, "-m", *flask, "celeriac", "worker", "-P", "threads", "-c", "1"], timeout=60
        )
        assert "ready: consuming flaskq" in worker.output()
        called = run(
            project,
            *flask,
            "celeriac",
            "call",
            "proj.greet",
            "--args",
            '["Ada"]',
            "--wait",
            "--timeout",
            "30",
        )
    assert called.returncode == 0, called.stderr
    assert "hello, Ada" in called.stdout  # run by the worker inside the Flask app's context


def test_errors_are_one_line_and_exit_2(project: Path) -> None:
    plain = run(project, "celeriac", "-A", "celeriac_flask.entry:app", "config")
    assert plain.returncode == 2
    assert "error: no Flask app to run celeriac for" in plain.stderr
    without = run(project, "flask", "--app", "proj:plain", "celeriac", "config")
    assert "No such command 'celeriac'" in without.stderr  # the command comes with init_app
    entry = subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "celeriac_flask.entry:app", "config"],
        cwd=project,
        env=subprocess_env(project, drop=("CELERIAC_", "FLASK_"), FLASK_APP="proj:plain"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert entry.returncode == 2
    assert "error: the Flask app 'plain' has no celeriac app" in entry.stderr
