"""The distributions stay in step: one version, requirements on the same series, an extra per plugin."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "distributions.py"


def test_versions_and_extras_are_in_step() -> None:
    spec = importlib.util.spec_from_file_location("distributions", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert "celeriac-redis" in tool.distributions()
    assert tool.problems() == []
