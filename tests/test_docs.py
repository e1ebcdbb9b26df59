"""The docs are checked: every relative link resolves, and every code block runs or says it cannot.

Code blocks in README.md and docs/ follow three rules:

- A block whose info string has the word ``fragment`` (```` ```python fragment ````) is an
  excerpt that cannot run on its own; it is skipped, and only a fragment may be.
- A block whose first line is ``# <path>`` (``# proj/tasks.py``, ``# celeriac.toml``) is a
  file: it is written into a fresh project directory. If the page writes test files
  (``test_*.py``), pytest runs them there, in a process of its own, and they must pass.
- Any other Python block runs, in page order, in one namespace per page, with the project
  directory as the working directory and import path. A block of ``>>>`` lines is a session
  whose outputs must match. Each app (``Celeriac``) a block creates or imports gets a worker
  thread at once, so later blocks can wait for results. TOML blocks must parse.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from celeriac._client import shared
from celeriac._client.app import Celeriac
from celeriac.testing import subprocess_env
from celeriac.testing import worker_thread

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FILE_HEADER = re.compile(r"#\s*([\w./-]+\.(?:py|toml|cfg|ini|txt))\s*$")


@attrs.frozen
class Block:
    page: Path
    line: int
    language: str
    words: tuple[str, ...]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def fragment(self) -> bool:
        return "fragment" in self.words

    @property
    def path(self) -> str | None:
        first = self.text.split("\n", 1)[0]
        match = FILE_HEADER.fullmatch(first.strip())
        return match.group(1) if match else None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        info = match.group(1).split()
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                language=info[0] if info else "",
                words=tuple(info[1:]),
                text=match.group(2),
            )
        )
    return found


def prose(page: Path) -> str:
    """The page without its code blocks and inline code: where links live."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", page.read_text()), re.MULTILINE)
    return {slug(h) for h in headings}


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for match in LINK.finditer(prose(page)):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page_id(page)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_toml_blocks_parse(page: Path) -> None:
    for block in blocks(page):
        if block.language == "toml" and not block.fragment:
            try:
                tomllib.loads(block.text)
            except tomllib.TOMLDecodeError as exc:
                pytest.fail(f"{block.where}: {exc}")


def runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(b.language == "python" and not b.fragment for b in blocks(page))]


class Session:
    """One page's namespace, project directory and worker threads."""

    def __init__(self, page: Path, directory: Path, stack: ExitStack) -> None:
        self.page = page
        self.directory = directory
        self.stack = stack
        self.namespace: dict[str, Any] = {"__name__": "proj"}
        self.served: set[int] = set()

    def serve_new_apps(self) -> None:
        candidates = list(self.namespace.values())
        for module in list(sys.modules.values()):
            if _inside(getattr(module, "__file__", None), self.directory):
                candidates.extend(vars(module).values())
        for value in candidates:
            if isinstance(value, Celeriac) and id(value) not in self.served:
                self.served.add(id(value))
                self.stack.callback(value.close)
                self.stack.enter_context(worker_thread(value, concurrency=4))

    def run(self, block: Block) -> None:
        if block.text.lstrip().startswith(">>>"):
            self.run_session(block)
        else:
            exec(compile(block.text, block.where, "exec"), self.namespace)
        self.serve_new_apps()

    def run_session(self, block: Block) -> None:
        """A ``>>>`` transcript, example by example: each output must match what it shows."""
        checker = doctest.OutputChecker()
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        for example in doctest.DocTestParser().get_examples(block.text):
            source = example.source.strip()
            try:
                value = eval(compile(source, block.where, "eval"), self.namespace)
                got = "" if value is None else repr(value) + "\n"
            except SyntaxError:
                exec(compile(source, block.where, "exec"), self.namespace)
                got = ""
            assert checker.check_output(example.want, got, flags), (
                f"{block.where}: {source!r} gave {got!r}, the page shows {example.want!r}"
            )
            self.serve_new_apps()


def _inside(path: str | None, directory: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(directory.resolve())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project directory: the working directory and first on the import path, with
    no ``CELERIAC_*`` variable of the developer's leaking in; its modules are forgotten after,
    and so are the ``@shared_task`` declarations its blocks made (they are process-wide: a
    page's ``proj.fetch`` would otherwise be registered into every app later tests build)."""
    for name in [name for name in __import__("os").environ if name.startswith("CELERIAC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(shared._STATE, "declarations", list(shared._STATE.declarations))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if _inside(getattr(sys.modules[name], "__file__", None), tmp_path):
            del sys.modules[name]


@pytest.mark.parametrize("page", runnable_pages(), ids=page_id)
def test_code_blocks_run(page: Path, project: Path) -> None:
    page_blocks = [b for b in blocks(page) if not b.fragment and b.language in ("python", "toml")]
    files = [b for b in page_blocks if b.path is not None]
    for block in files:
        target = project / block.path  # type: ignore[operator]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text.split("\n", 1)[1] if "\n" in block.text else "")
    tests = [b.path for b in files if Path(b.path or "").name.startswith("test_")]
    if tests:
        env = subprocess_env(project)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{page_id(page)}'s tests failed:\n{run.stdout}\n{run.stderr}"
        assert re.search(r"\b\d+ passed\b", run.stdout), run.stdout
    with ExitStack() as stack:
        session = Session(page, project, stack)
        for block in page_blocks:
            if block.language == "python" and block.path is None:
                session.run(block)
