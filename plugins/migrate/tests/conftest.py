"""A Celery project written by each test, and ``celeriac migrate celery`` run on it as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen

from celeriac.testing import subprocess_env


@frozen
class Run:
    """What one ``celeriac migrate celery`` printed, and the file it was saved to."""

    code: int
    out: str
    err: str
    path: Path

    @property
    def toml(self) -> dict[str, Any]:
        return tomllib.loads(self.out)


Project = Callable[..., Path]
Migrate = Callable[..., Run]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Write ``proj/<name>.py`` modules (dedented) into a fresh project directory."""

    def write(**modules: str) -> Path:
        package = tmp_path / "proj"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").touch()
        for name, source in modules.items():
            (package / f"{name}.py").write_text(textwrap.dedent(source))
        return tmp_path

    return write


@pytest.fixture
def migrate(tmp_path: Path) -> Migrate:
    """Run ``celeriac migrate celery SPEC`` in the project directory; save stdout as celeriac.toml."""

    def run(spec: str = "proj.celery:app", *args: str, env: dict[str, str] | None = None) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "celeriac", "migrate", "celery", spec, *args],
            cwd=tmp_path,
            env=subprocess_env(tmp_path, drop=("CELERIAC_", "CELERY_"), **(env or {})),
            capture_output=True,
            text=True,
            timeout=120,
        )
        path = tmp_path / "celeriac.toml"
        path.write_text(done.stdout)
        return Run(code=done.returncode, out=done.stdout, err=done.stderr, path=path)

    return run
