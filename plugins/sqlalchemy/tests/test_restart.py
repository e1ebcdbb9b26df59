"""A PostgreSQL restarted under two worker processes: nothing is lost.

The cluster is the test's own (Debian's initdb/pg_ctl on a free port), so restarting it
disturbs nobody. 300 tasks each note their run in a file; after a fifth of them ran, the
database is stopped and started again. Every task must end with its result stored, none may
be dead-lettered, and each ran at least once (a run whose result could not be stored runs again).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import wait_for
from celeriac_sqlalchemy.testing import PostgresCluster
from celeriac_sqlalchemy.testing import postgres_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TASKS = """
import time
from celeriac import Celeriac

app = Celeriac("restarttasks")


@app.task
def counted(n, path):
    with open(path, "a") as f:
        f.write(f"{n}\\n")
    time.sleep(0.01)
    return n
"""


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as running:
        yield running


def wait_for_lines(path: Path, count: int, timeout: float) -> None:
    wait_for(
        lambda: path.exists() and len(path.read_text().splitlines()) >= count,
        timeout,
        f"{count} runs noted",
    )


def test_a_database_restart_loses_nothing(
    cluster: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "restarttasks.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "celeriac.toml").write_text(
        'broker = "sqlite:///broker.sqlite3"\n'
        f'result_store = "db+{cluster.url}"\n'
        "visibility_timeout = 10.0\n"
        '[plugins]\nenable = ["sqlite", "json", "threads", "sqlalchemy"]\n'
        "[worker]\npoll_timeout = 0.1\nconcurrency = 4\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("restarttasks", None)
    import restarttasks

    app: Any = restarttasks.app
    runs = tmp_path / "runs.txt"
    with process_group(tmp_path) as processes:
        for _ in range(2):
            processes.start(celeriac_command("restarttasks", "worker"))
        results = [app.send_task("restarttasks.counted", (n, str(runs))) for n in range(300)]
        wait_for_lines(runs, 60, timeout=60)
        cluster.restart()
        values = [result.get(timeout=120) for result in results]
        logs = "".join(process.output() for process in processes.started)
    assert values == list(range(300))
    ran = [int(line) for line in runs.read_text().splitlines()]
    assert set(ran) == set(range(300)), "a task never ran"
    assert app.transport.dead_letters() == [], "a task was dead-lettered"
    assert "trying again" in logs, "the restart was not noticed: the test proved nothing"
    app.close()
    sys.modules.pop("restarttasks", None)
