"""Workflows on every result store a user can choose, under two worker processes.

Each store gets a namespace of its own: a database created for the test on the PostgreSQL and
MariaDB running here (dropped afterwards), a memcached of the test's own on a free port, a
directory in ``tmp_path``. The broker is a SQLite file. Checked on each: a chain, a group, a
chord of 1,000 parts counted by both workers, and ``replace`` (alone and inside a chain).
A store plugin joins the matrix by adding a case to ``store_case``.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac._client.canvas import chain
from celeriac._client.canvas import chord
from celeriac._client.canvas import group
from celeriac.testing import celeriac_command
from celeriac.testing import process_group

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

STORES = ("postgresql", "mariadb", "memcached", "filesystem")

TASKS = """
import os
from celeriac import Celeriac

app = Celeriac("canvastasks")


@app.task
def add(x, y):
    return x + y


@app.task
def part(n, path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\\n")
    return n


@app.task
def total(values):
    return sum(values)


@app.task(bind=True)
def replaced(self, x):
    self.replace(add.s(x, 100))
"""


@contextlib.contextmanager
def store_case(name: str, directory: Path) -> Iterator[tuple[str, str]]:
    """The ``result_store`` URL and the plugin serving it, on a namespace of the test's own."""
    if name in ("postgresql", "mariadb"):
        from celeriac_sqlalchemy.testing import mariadb_url
        from celeriac_sqlalchemy.testing import postgres_url
        from celeriac_sqlalchemy.testing import private_database

        with private_database(postgres_url() if name == "postgresql" else mariadb_url()) as url:
            yield f"db+{url}", "sqlalchemy"
    elif name == "memcached":
        from celeriac_memcached.testing import memcached_server

        with memcached_server() as server:
            yield server.url, "memcached"
    elif name == "filesystem":
        yield f"file://{directory}/results", "filesystem"
    else:
        raise ValueError(f"no result store case {name!r}; known: {', '.join(STORES)}")


@pytest.fixture(params=STORES)
def client(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The project's app on the store, with two worker processes serving it."""
    with store_case(request.param, tmp_path) as (url, plugin):
        (tmp_path / "canvastasks.py").write_text(textwrap.dedent(TASKS))
        (tmp_path / "celeriac.toml").write_text(
            'broker = "sqlite:///broker.sqlite3"\n'
            f'result_store = "{url}"\n'
            f'[plugins]\nenable = ["sqlite", "json", "threads", "{plugin}"]\n'
            "[worker]\npoll_timeout = 0.1\nconcurrency = 8\n"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        sys.modules.pop("canvastasks", None)
        import canvastasks

        with process_group(tmp_path) as processes:
            for _ in range(2):
                processes.start(celeriac_command("canvastasks", "worker"))
            yield canvastasks
        canvastasks.app.close()
        sys.modules.pop("canvastasks", None)


def test_chain_group_chord_and_replace(client: Any, tmp_path: Path) -> None:
    add, part, total, replaced = client.add, client.part, client.total, client.replaced
    assert chain(add.s(1, 2), add.s(3), add.s(4)).apply_async().get(timeout=30) == 10
    assert group(add.s(n, n) for n in range(50)).apply_async().get(timeout=30) == [2 * n for n in range(50)]

    parts = tmp_path / "parts.txt"
    result = chord((part.s(n, str(parts)) for n in range(1000)), total.s()).apply_async()
    assert result.get(timeout=180) == sum(range(1000))
    pids = parts.read_text().splitlines()
    assert len(pids) >= 1000
    assert len(set(pids)) == 2, "both worker processes should have run chord parts"

    assert replaced.delay(1).get(timeout=30) == 101
    assert chain(replaced.s(1), add.s(1)).apply_async().get(timeout=30) == 102
