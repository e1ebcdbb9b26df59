"""The SQLite result store: one row per task, polled by waiters; chord counters and shared
rate-limit slots for the workers of one host."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from typing import final

from celeriac.plugin import Config
from celeriac.plugin import ResultRecord
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import Database
from celeriac_sqlite._db import database_path
from celeriac_sqlite._db import poll

_FIRST_POLL = 0.001
_MAX_POLL = 0.05
# Expired rows are invisible to readers at once; deleting them is only about disk space, so
# one indexed DELETE per this many writes keeps the garbage bounded at almost no cost.
_SWEEP_EVERY = 1000

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS results (
    task_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    payload BLOB NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS results_expires ON results (expires_at);
CREATE TABLE IF NOT EXISTS chord_parts (
    group_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    done_at REAL NOT NULL,
    PRIMARY KEY (group_id, task_id)
);
CREATE TABLE IF NOT EXISTS rate_slots (key TEXT PRIMARY KEY, next_free REAL NOT NULL);
COMMIT;
"""
# A SUCCESS row is final (a duplicate run after a redelivery must not undo it) until it expires.
_UPSERT = """
INSERT INTO results (task_id, state, payload, content_type, content_encoding, updated_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state,
    payload = excluded.payload,
    content_type = excluded.content_type,
    content_encoding = excluded.content_encoding,
    updated_at = excluded.updated_at,
    expires_at = excluded.expires_at
WHERE results.state != 'SUCCESS' OR results.expires_at <= excluded.updated_at
"""
_BOOK_SLOT = """
INSERT INTO rate_slots (key, next_free) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET next_free = excluded.next_free
"""
_GET = """
SELECT task_id, state, payload, content_type, content_encoding FROM results
WHERE task_id = ? AND (expires_at IS NULL OR expires_at > ?)
"""
_GET_MANY = """
SELECT task_id, state, payload, content_type, content_encoding FROM results
WHERE task_id IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)
"""


@final
class SqliteResultStore:
    """Task states in a ``results`` table, kept ``result_expires`` seconds.

    A ``result_expires`` of 0 or less keeps results until they are forgotten.

    :param url: ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``;
        it may be the broker's file.
    """

    def __init__(self, url: str, config: Config) -> None:
        self._db = Database(database_path(url), config.section("sqlite", SqliteConfig), _SCHEMA)
        self._expires = config.result_expires
        self._writes = 0

    def store(self, record: ResultRecord) -> None:
        """Save the state, unless a SUCCESS is already stored."""
        now = time.time()
        expires_at = now + self._expires if self._expires > 0 else None
        row = (record.task_id, record.state, record.payload, record.content_type, record.content_encoding)
        with self._db.connection() as conn:
            conn.execute(_UPSERT, (*row, now, expires_at))
            if self._writes % _SWEEP_EVERY == 0:
                conn.execute("DELETE FROM results WHERE expires_at <= ?", (now,))
            self._writes += 1

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        """``store`` for each record, in one transaction."""
        now = time.time()
        expires_at = now + self._expires if self._expires > 0 else None
        rows = [
            (r.task_id, r.state, r.payload, r.content_type, r.content_encoding, now, expires_at)
            for r in records
        ]
        with self._db.transaction() as conn:
            conn.executemany(_UPSERT, rows)
            if self._writes // _SWEEP_EVERY != (self._writes + len(rows)) // _SWEEP_EVERY:
                conn.execute("DELETE FROM results WHERE expires_at <= ?", (now,))
            self._writes += len(rows)

    def get(self, task_id: str) -> ResultRecord | None:
        with self._db.connection() as conn:
            row = conn.execute(_GET, (task_id, time.time())).fetchone()
        return None if row is None else _record(row)

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        found: dict[str, ResultRecord] = {}
        now = time.time()
        # One read transaction, in chunks that stay under SQLite's bound-parameter limit.
        with self._db.connection() as conn:
            for start in range(0, len(task_ids), 500):
                chunk = list(task_ids[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                query = _GET_MANY.format(marks=marks)
                found.update((row[0], _record(row)) for row in conn.execute(query, (*chunk, now)))
        return [found.get(task_id) for task_id in task_ids]

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Poll until the task reaches one of ``states``; None when ``timeout`` passes first."""

        def attempt() -> ResultRecord | None:
            record = self.get(task_id)
            return record if record is not None and record.state in states else None

        return poll(attempt, timeout, first=_FIRST_POLL, cap=_MAX_POLL)

    def forget(self, task_id: str) -> None:
        with self._db.connection() as conn:
            conn.execute("DELETE FROM results WHERE task_id = ?", (task_id,))

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        """Count a finished header task once; True for the call that completes the chord.

        Insert and count run in one write transaction, so two workers finishing the last two
        parts at once see 2/2 exactly once between them. Parts stay recorded, so a header
        task delivered again after the chord completed cannot complete it a second time.
        """
        with self._db.transaction() as conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO chord_parts (group_id, task_id, done_at) VALUES (?, ?, ?)",
                (group_id, task_id, time.time()),
            ).rowcount
            if not inserted:
                return False
            (count,) = conn.execute(
                "SELECT count(*) FROM chord_parts WHERE group_id = ?", (group_id,)
            ).fetchone()
            return bool(count == size)

    def reserve_slot(self, key: str, interval: float, max_wait: float) -> float:
        """Book the next slot of ``key`` (a shared rate limit): each booking moves the next
        free time ``interval`` on; a wait longer than ``max_wait`` books nothing. Times are
        this host's clock, which every process sharing the file shares."""
        with self._db.transaction() as conn:
            now = time.time()
            row = conn.execute("SELECT next_free FROM rate_slots WHERE key = ?", (key,)).fetchone()
            slot = max(float(row[0]) if row is not None else now, now)
            wait = slot - now
            if wait <= max_wait:
                conn.execute(_BOOK_SLOT, (key, slot + interval))
        return wait

    def close(self) -> None:
        self._db.close()


def _record(row: tuple[Any, ...]) -> ResultRecord:
    task_id, state, payload, content_type, content_encoding = row
    return ResultRecord(
        task_id=task_id,
        state=state,
        payload=payload,
        content_type=content_type,
        content_encoding=content_encoding,
    )
