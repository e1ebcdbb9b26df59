"""The SQLite schedule store: beat's last-run times, one row per entry, its leader lock, and
entries added while beat runs."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from typing import final

from celeriac.plugin import Config
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import Database
from celeriac_sqlite._db import database_path

# New tables rather than new columns: a file written by an older version gains them as is.
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS beat_schedule (entry TEXT PRIMARY KEY, last_run_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS beat_claims (entry TEXT PRIMARY KEY, claimed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS beat_locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS beat_entries (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS beat_entries_version (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL
);
INSERT OR IGNORE INTO beat_entries_version (id, version) VALUES (1, 0);
COMMIT;
"""
_UPSERT = """
INSERT INTO beat_schedule (entry, last_run_at) VALUES (?, ?)
ON CONFLICT (entry) DO UPDATE SET last_run_at = excluded.last_run_at
"""
# One statement each, so each is atomic without an explicit transaction.
_ACQUIRE = """
INSERT INTO beat_locks (name, owner, expires_at) VALUES (:name, :owner, :expires)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE beat_locks.owner = excluded.owner OR beat_locks.expires_at <= :now
"""
_RENEW = (
    "UPDATE beat_locks SET expires_at = :expires WHERE name = :name AND owner = :owner AND expires_at > :now"
)
_PUT_ENTRY = """
INSERT INTO beat_entries (name, body) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET body = excluded.body
"""
_BUMP_VERSION = "UPDATE beat_entries_version SET version = version + 1 WHERE id = 1"
_CLAIM = """
INSERT INTO beat_claims (entry, claimed_at)
SELECT :entry, :when WHERE EXISTS (
    SELECT 1 FROM beat_locks WHERE name = :name AND owner = :owner AND expires_at > :now
)
ON CONFLICT (entry) DO UPDATE SET claimed_at = excluded.claimed_at
"""


@final
class SqliteScheduleStore:
    """Beat's last-run times in a ``beat_schedule`` table, so a restarted beat does not rerun entries.

    Also a :class:`~celeriac.plugin.BeatLock` for the beat instances of one machine: the
    lease is a row in ``beat_locks`` whose expiry is compared with this host's clock, which
    every process on the machine shares.

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

    # --- the leader lock -----------------------------------------------------------------

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._db.connection() as conn:
            cursor = conn.execute(_ACQUIRE, {"name": name, "owner": owner, "expires": now + ttl, "now": now})
        return cursor.rowcount == 1

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._db.connection() as conn:
            cursor = conn.execute(_RENEW, {"name": name, "owner": owner, "expires": now + ttl, "now": now})
        return cursor.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        with self._db.connection() as conn:
            conn.execute("DELETE FROM beat_locks WHERE name = ? AND owner = ?", (name, owner))

    def claim(self, name: str, owner: str, entry: str, when: float) -> bool:
        parameters = {"name": name, "owner": owner, "entry": entry, "when": when, "now": time.time()}
        with self._db.connection() as conn:
            cursor = conn.execute(_CLAIM, parameters)
        return cursor.rowcount == 1

    def claimed_at(self, entry: str) -> float | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT claimed_at FROM beat_claims WHERE entry = ?", (entry,)).fetchone()
        return None if row is None else float(row[0])

    # --- entries edited while beat runs -------------------------------------------------

    def stored_entries(self) -> dict[str, dict[str, Any]]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT name, body FROM beat_entries ORDER BY name").fetchall()
        return {name: json.loads(body) for name, body in rows}

    def put_entry(self, name: str, table: Mapping[str, Any]) -> None:
        body = json.dumps(dict(table))
        with self._db.transaction() as conn:
            conn.execute(_PUT_ENTRY, (name, body))
            conn.execute(_BUMP_VERSION)

    def delete_entry(self, name: str) -> bool:
        with self._db.transaction() as conn:
            deleted = conn.execute("DELETE FROM beat_entries WHERE name = ?", (name,)).rowcount
            if deleted:
                conn.execute(_BUMP_VERSION)
        return bool(deleted)

    def entries_version(self) -> int:
        with self._db.connection() as conn:
            row = conn.execute("SELECT version FROM beat_entries_version WHERE id = 1").fetchone()
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        self._db.close()
