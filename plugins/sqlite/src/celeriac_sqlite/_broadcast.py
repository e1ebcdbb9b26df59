"""Fan-out on SQLite: a table of recent broadcasts that subscribers read past their cursor.

Each subscriber remembers the last id it saw, so every subscriber gets every message sent
after it subscribed, in order. Rows older than ``_RETENTION`` seconds are pruned by
senders; a subscriber that stops reading for longer misses them, which is the at-most-once
contract of the Broadcaster protocol.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import final

from celeriac.plugin import Envelope
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import Database
from celeriac_sqlite._db import poll
from celeriac_sqlite._rows import envelope_columns
from celeriac_sqlite._rows import envelope_from_row

_RETENTION = 300.0
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS broadcasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    created REAL NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    headers TEXT NOT NULL,
    properties TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS broadcasts_channel ON broadcasts (channel, id);
COMMIT;
"""
_SEND = """
INSERT INTO broadcasts (channel, created, body, content_type, content_encoding, headers, properties)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_PRUNE = "DELETE FROM broadcasts WHERE created < ?"
_LAST = "SELECT coalesce(max(id), 0) FROM broadcasts"
_READ = """
SELECT id, body, content_type, content_encoding, headers, properties FROM broadcasts
WHERE channel = ? AND id > ? ORDER BY id
"""


@final
class SqliteBroadcast:
    """The fan-out half of the SQLite transport."""

    def __init__(self, path: Path, settings: SqliteConfig) -> None:
        self._db = Database(path, settings, _SCHEMA)
        self._poll_interval = settings.poll_interval

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        now = time.time()
        with self._db.transaction() as conn:
            conn.execute(_SEND, (channel, now, *envelope_columns(envelope)))
            conn.execute(_PRUNE, (now - _RETENTION,))

    def subscribe(self, channel: str) -> SqliteSubscription:
        with self._db.connection() as conn:
            (last,) = conn.execute(_LAST).fetchone()
        return SqliteSubscription(self._db, channel, last, self._poll_interval)

    def close(self) -> None:
        self._db.close()


@final
class SqliteSubscription:
    """Messages on one channel after ``cursor``, read by polling with back-off."""

    def __init__(self, db: Database, channel: str, cursor: int, poll_interval: float) -> None:
        self._db = db
        self._channel = channel
        self._cursor = cursor
        self._poll_interval = poll_interval

    def get(self, timeout: float) -> list[Envelope]:
        def attempt() -> list[Envelope] | None:
            with self._db.connection() as conn:
                rows = conn.execute(_READ, (self._channel, self._cursor)).fetchall()
            if not rows:
                return None
            self._cursor = rows[-1][0]
            return [envelope_from_row(*row[1:]) for row in rows]

        return poll(attempt, timeout, first=0.002, cap=self._poll_interval) or []

    def close(self) -> None:
        """Nothing held: the cursor is all the state."""
