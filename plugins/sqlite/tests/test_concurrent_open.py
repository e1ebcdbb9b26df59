"""Several processes opening one new SQLite file at the same moment (a worker and beat
starting together) all get it: the switch to WAL waits for the others instead of failing
with "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

OPENER = """
import sys, time
from celeriac.plugin import Config
from celeriac_sqlite._results import SqliteResultStore

path, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
store = SqliteResultStore(f"sqlite:///{path}", Config())
assert store.get("nothing") is None
store.close()
"""


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(3):  # a fresh file each time: only the first opening races
        path = tmp_path / f"fresh-{attempt}.sqlite3"
        start = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, str(path), repr(start)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        try:
            failures = [p.communicate(timeout=60)[1] for p in procs if p.wait(timeout=60) != 0]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        assert failures == [], failures[0]
