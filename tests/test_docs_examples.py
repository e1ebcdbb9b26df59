"""The examples in the docs run, in order, against a real worker: what they show is true."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import worker_thread

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


@pytest.mark.parametrize("page", ["canvas.md"])
def test_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first block defines ``app`` and its tasks; the rest run with a worker serving it."""
    monkeypatch.chdir(tmp_path)
    setup, *examples = python_blocks(page)
    assert examples, f"{page} has no examples after its setup block"
    namespace: dict[str, Any] = {"__name__": "proj"}
    exec(compile(setup, f"{page}[setup]", "exec"), namespace)
    app = namespace["app"]
    try:
        with worker_thread(app, concurrency=4):
            for number, example in enumerate(examples, 1):
                exec(compile(example, f"{page}[example {number}]", "exec"), namespace)
    finally:
        app.close()
