"""memcached restarted under two worker processes: nothing is lost that memcached could keep.

The server is the test's own, on a free port. 600 tasks each note their run in a file; after
a tenth of them ran, the server is killed, and started again (empty: memcached keeps nothing)
once the workers have met it down. Results stored before the kill are gone with it; every
task noted as run after the kill must end with its result stored, every task ran, and none
was dead-lettered.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import wait_for
from celeriac_memcached.testing import MemcachedServer
from celeriac_memcached.testing import memcached_server

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
def server() -> Iterator[MemcachedServer]:
    with memcached_server() as running:
        yield running


def wait_for_lines(path: Path, count: int, timeout: float) -> None:
    wait_for(
        lambda: path.exists() and len(path.read_text().splitlines()) >= count,
        timeout,
        f"{count} runs noted",
    )


#: Enough that, on a busy machine too, 150 or more are still to run when the server stops
#: (after 60): a loaded run once had 187 done by the time the stop took effect.
TASKS_SENT = 600


def test_a_server_restart_loses_nothing_it_could_keep(
    server: MemcachedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "restarttasks.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "celeriac.toml").write_text(
        'broker = "sqlite:///broker.sqlite3"\n'
        f'result_store = "{server.url}"\n'
        "visibility_timeout = 10.0\n"
        '[plugins]\nenable = ["sqlite", "json", "threads", "memcached"]\n'
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
        results = [app.send_task("restarttasks.counted", (n, str(runs))) for n in range(TASKS_SENT)]
        wait_for_lines(runs, 60, timeout=60)
        server.stop()
        before = {int(line) for line in runs.read_text().splitlines()}
        # Workers meet the server down: finishing tasks wait for it (they hold their messages).
        deadline = time.monotonic() + 30
        while not any("trying again" in process.output() for process in processes.started):
            assert time.monotonic() < deadline, "no worker noticed the server down within 30 s"
            time.sleep(0.05)
        server.start()
        after = [results[n] for n in range(TASKS_SENT) if n not in before]
        values = [result.get(timeout=120) for result in after]
        logs = "".join(process.output() for process in processes.started)
    assert values == [n for n in range(TASKS_SENT) if n not in before]
    assert len(values) >= 150, f"only {len(values)} tasks ran after the kill: the test proved little"
    ran = [int(line) for line in runs.read_text().splitlines()]
    assert set(ran) == set(range(TASKS_SENT)), "a task never ran"
    assert app.transport.dead_letters() == [], "a task was dead-lettered"
    assert "trying again" in logs, "the workers never met the server down: the test proved nothing"
    app.close()
    sys.modules.pop("restarttasks", None)
