"""The example in docs/migrating-from-celery.md is what the command prints, to the character."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import Migrate
from .conftest import Project

PAGE = Path(__file__).resolve().parents[3] / "docs" / "migrating-from-celery.md"


def test_the_documented_output_is_the_real_output(project: Project, migrate: Migrate) -> None:
    section = PAGE.read_text().split("## `celeriac migrate celery`")[1]
    celery_module = re.search(r"```python\n# proj/celery.py\n(.*?)```", section, re.DOTALL)
    printed = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert celery_module is not None and printed is not None
    project(celery=celery_module.group(1))
    run = migrate()
    assert run.code == 0, run.err
    assert run.out == printed.group(1)
