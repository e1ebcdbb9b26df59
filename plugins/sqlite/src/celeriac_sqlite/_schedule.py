"""The SQLite schedule store: beat's last-run times, one row per entry."""

from __future__ import annotations

from typing import final

from celeriac.config import Config
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import Database
from celeriac_sqlite._db import database_path

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS beat_schedule (entry TEXT PRIMARY KEY, last_run_at REAL NOT NULL);
COMMIT;
"""
_UPSERT = """
INSERT INTO beat_schedule (entry, last_run_at) VALUES (?, ?)
ON CONFLICT (entry) DO UPDATE SET last_run_at = excluded.last_run_at
"""


@final
class SqliteScheduleStore:
    """Beat's last-run times in a ``beat_schedule`` table, so a restarted beat does not rerun entries.

    :param url: ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``;
        it may be the broker's file.
    """

    def __init__(self, url: str, config: Config) -> None:
        self._db = Database(database_path(url), config.section("sqlite", SqliteConfig), _SCHEMA)

    def last_run_at(self, entry: str) -> float | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT last_run_at FROM beat_schedule WHERE entry = ?", (entry,)).fetchone()
        return None if row is None else float(row[0])

    def set_last_run_at(self, entry: str, when: float) -> None:
        with self._db.connection() as conn:
            conn.execute(_UPSERT, (entry, when))

    def close(self) -> None:
        self._db.close()
