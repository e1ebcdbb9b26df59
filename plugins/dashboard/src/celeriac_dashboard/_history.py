"""The dashboard's memory: tasks, their events, counts over time and queue samples in SQLite.

One file (``[dashboard] history``) so a restart loses nothing, bounded so it never grows
without limit: at most ``max_tasks`` tasks (the least recently updated go first), their
events, and a week of counts and queue samples. Every method holds one lock around one
connection: the event thread writes in batches, request handlers read between them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import final

from celeriac_dashboard._query import TaskPage
from celeriac_dashboard._query import TaskQuery
from celeriac_dashboard._query import select

#: Width of one bucket of the counts behind the graphs, in seconds.
BUCKET = 10
#: Counts and queue samples older than this are dropped, in seconds.
KEEP_SERIES = 7 * 24 * 3600
#: Events kept per task kept, on average (a retried task has more).
EVENTS_PER_TASK = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT, state TEXT, worker TEXT,
    received REAL, started REAL, timestamp REAL, runtime REAL, root_id TEXT, parent_id TEXT,
    args TEXT, kwargs TEXT, result TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (seq);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, seq);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, seq);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, seq);
CREATE INDEX IF NOT EXISTS tasks_root ON tasks (root_id);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id);
CREATE INDEX IF NOT EXISTS tasks_done ON tasks (state, timestamp);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_uuid ON events (uuid);
CREATE TABLE IF NOT EXISTS workers (hostname TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counts (
    bucket INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (bucket, name, state)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_samples (at REAL NOT NULL, queue TEXT NOT NULL, length INTEGER);
CREATE INDEX IF NOT EXISTS queue_samples_at ON queue_samples (at);
"""

#: Columns of ``tasks`` besides ``data``, filled from the task's fields of the same name.
_COLUMNS = (
    "name",
    "state",
    "worker",
    "received",
    "started",
    "timestamp",
    "runtime",
    "root_id",
    "parent_id",
    "args",
    "kwargs",
    "result",
)


@final
class History:
    """The SQLite history; ``path`` ``""`` keeps it in memory."""

    def __init__(self, path: str, *, max_tasks: int) -> None:
        self.max_tasks = max_tasks
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if path:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()
        self._seq: int = row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing (the event thread) ----------------------------------------------------

    def record(
        self,
        tasks: Iterable[Mapping[str, Any]],
        events: Sequence[Mapping[str, Any]],
        workers: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Store the new state of ``tasks``, their ``events`` and ``workers``, in one transaction."""
        tasks = list(tasks)
        task_rows = []
        for task in tasks:
            self._seq += 1
            values = [task.get(column) for column in _COLUMNS]
            task_rows.append((task["uuid"], self._seq, *values, json.dumps(task, default=str)))
        event_rows = [
            (event["uuid"], json.dumps(event, default=str))
            for event in events
            if isinstance(event.get("uuid"), str)
        ]
        names = {task["uuid"]: task.get("name") for task in tasks}
        counts: dict[tuple[int, str, str], int] = {}
        for event in events:
            kind = event.get("type", "")
            if kind.startswith("task-") and kind != "task-sent":
                bucket = int(float(event.get("timestamp") or time.time())) // BUCKET * BUCKET
                name = event.get("name") or names.get(event.get("uuid")) or "?"
                key = (bucket, str(name), kind.removeprefix("task-"))
                counts[key] = counts.get(key, 0) + 1
        placeholders = ", ".join("?" * (len(_COLUMNS) + 3))
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO tasks (uuid, seq, {', '.join(_COLUMNS)}, data) "
                f"VALUES ({placeholders})",
                task_rows,
            )
            self._db.executemany("INSERT INTO events (uuid, body) VALUES (?, ?)", event_rows)
            self._db.executemany(
                "INSERT INTO counts VALUES (?, ?, ?, ?) "
                "ON CONFLICT (bucket, name, state) DO UPDATE SET n = n + ?",
                [(*key, n, n) for key, n in counts.items()],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO workers VALUES (?, ?)",
                [(worker["hostname"], json.dumps(worker, default=str)) for worker in workers],
            )

    def sample_queues(self, lengths: Mapping[str, int | None], at: float) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO queue_samples VALUES (?, ?, ?)", [(at, q, n) for q, n in lengths.items()]
            )

    def prune(self, now: float) -> None:
        """Drop what is past the bounds: old tasks, their events, old counts and samples."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM tasks WHERE seq <= ?", (self._seq - self.max_tasks,))
            self._db.execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                (self.max_tasks * EVENTS_PER_TASK,),
            )
            self._db.execute("DELETE FROM counts WHERE bucket < ?", (now - KEEP_SERIES,))
            self._db.execute("DELETE FROM queue_samples WHERE at < ?", (now - KEEP_SERIES,))

    # --- reading -------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def events_of(self, uuids: Iterable[str]) -> list[dict[str, Any]]:
        """The stored events of these tasks, oldest first."""
        wanted = list(uuids)
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(f"SELECT body FROM events WHERE uuid IN ({marks}) ORDER BY id", chunk)
            found.extend(json.loads(body) for (body,) in rows)
        return found

    def workers(self) -> list[dict[str, Any]]:
        return [json.loads(data) for (data,) in self._rows("SELECT data FROM workers ORDER BY hostname")]

    def worker_counts(self, hostname: str) -> dict[str, int]:
        """Tasks kept that this worker handled, by outcome (Flower's workers table)."""
        rows = dict(
            self._rows("SELECT state, COUNT(*) FROM tasks WHERE worker = ? GROUP BY state", (hostname,))
        )
        return {
            "succeeded": rows.get("SUCCESS", 0),
            "failed": rows.get("FAILURE", 0),
            "retried": rows.get("RETRY", 0),
        }

    def task(self, uuid: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT data FROM tasks WHERE uuid = ?", (uuid,))
        return json.loads(rows[0][0]) if rows else None

    def children(self, uuid: str) -> list[str]:
        return [
            row[0] for row in self._rows("SELECT uuid FROM tasks WHERE parent_id = ? ORDER BY seq", (uuid,))
        ]

    def family(self, root_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """Tasks of one workflow (sharing ``root_id``), the root included, oldest first."""
        rows = self._rows(
            "SELECT data FROM tasks WHERE root_id = ? OR uuid = ? ORDER BY received, seq LIMIT ?",
            (root_id, root_id, limit),
        )
        return [json.loads(data) for (data,) in rows]

    def task_types(self) -> list[str]:
        return [
            row[0]
            for row in self._rows("SELECT DISTINCT name FROM tasks WHERE name IS NOT NULL ORDER BY name")
        ]

    def worker_names(self) -> list[str]:
        return [
            row[0]
            for row in self._rows("SELECT DISTINCT worker FROM tasks WHERE worker IS NOT NULL ORDER BY 1")
        ]

    def tasks(self, query: TaskQuery) -> TaskPage:
        """One page of tasks matching ``query``.

        :raises ValueError: for an unknown sort key or search field, naming it.
        """
        sql = select(query)
        rows = self._rows(sql.rows, sql.params)
        (total,) = self._rows(sql.count, sql.params)[0]
        return TaskPage(tasks=[json.loads(data) for (data,) in rows], total=total)

    def counts(self, since: float) -> list[tuple[int, str, str, int]]:
        """``(bucket, task name, event kind, count)`` from ``since`` on."""
        return [
            tuple(row)
            for row in self._rows(
                "SELECT bucket, name, state, n FROM counts WHERE bucket >= ? ORDER BY bucket", (since,)
            )
        ]

    def runtimes(self, since: float) -> list[tuple[float, float]]:
        """``(finished at, runtime)`` of tasks that succeeded from ``since`` on."""
        rows = self._rows(
            "SELECT timestamp, runtime FROM tasks "
            "WHERE state = 'SUCCESS' AND timestamp >= ? AND runtime IS NOT NULL",
            (since,),
        )
        return [(float(at), float(runtime)) for at, runtime in rows]

    def queue_samples(self, since: float) -> list[tuple[float, str, int | None]]:
        return [
            tuple(row)
            for row in self._rows(
                "SELECT at, queue, length FROM queue_samples WHERE at >= ? ORDER BY at", (since,)
            )
        ]

    def queue_names(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT DISTINCT queue FROM queue_samples ORDER BY 1")]
