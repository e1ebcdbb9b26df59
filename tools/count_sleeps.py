"""Count the ``time.sleep`` calls in the project's tests (the figure docs/testing.md quotes).

Run from the repository's root: ``python tools/count_sleeps.py``. Reads every tracked
test file (under ``tests/`` or a ``tests`` folder) with ``ast``; calls inside string
constants (the tasks modules tests write to a project directory) are parsed and counted
apart. Prints the two counts and their sum, then the files with the most calls.
"""

from __future__ import annotations

import ast
import subprocess
import textwrap
from collections import Counter


def sleeps(tree: ast.AST) -> int:
    """Calls of ``time.sleep(...)`` or a bare ``sleep(...)`` in ``tree``."""
    found = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "sleep":
            found += isinstance(func.value, ast.Name) and func.value.id == "time"
        elif isinstance(func, ast.Name) and func.id == "sleep":
            found += 1
    return found


def in_strings(tree: ast.AST) -> int:
    """Calls inside string constants that are themselves Python source."""
    found = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "sleep(" in node.value:
            try:
                found += sleeps(ast.parse(textwrap.dedent(node.value)))
            except SyntaxError:
                continue
    return found


def main() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, check=True)
    files = [name for name in tracked.stdout.split() if name.startswith("tests/") or "/tests/" in name]
    per_file: Counter[str] = Counter()
    code = strings = 0
    for name in files:
        with open(name, encoding="utf-8") as source:
            tree = ast.parse(source.read(), name)
        here, inside = sleeps(tree), in_strings(tree)
        code, strings = code + here, strings + inside
        if here + inside:
            per_file[name] = here + inside
    total = code + strings
    print(f"time.sleep calls in tests: {total} ({code} in test code, {strings} in tasks-module strings)")
    for name, count in per_file.most_common(10):
        print(f"{count:4d}  {name}")


if __name__ == "__main__":
    main()
