"""The SQLite transport: a table of messages leased to consumers for a visibility timeout."""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import START_LEDGER_TTL
from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac_sqlite._broadcast import SqliteBroadcast
from celeriac_sqlite._broadcast import SqliteSubscription
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import Database
from celeriac_sqlite._db import database_path
from celeriac_sqlite._db import poll
from celeriac_sqlite._rows import BadRowError
from celeriac_sqlite._rows import envelope_columns
from celeriac_sqlite._rows import envelope_from_row
from celeriac_sqlite._rows import repaired

log = logging.getLogger("celeriac.sqlite")
_FIRST_POLL = 0.002
# Priorities are clamped to AMQP's 0-9. Listing them lets SQLite seek to the visible rows of
# each priority in index order and stop after ``limit`` rows, instead of stepping over every
# leased or delayed message or sorting the whole backlog.
_PRIORITIES = ", ".join(str(level) for level in range(9, -1, -1))

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    visible_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lease INTEGER,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    headers TEXT NOT NULL,
    properties TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_fetch ON messages (queue, priority DESC, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    headers TEXT NOT NULL,
    properties TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS started (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    at REAL NOT NULL
);
COMMIT;
"""
_RECORD_START = """
INSERT INTO started (key, count, at) VALUES (?, 1, ?)
ON CONFLICT (key) DO UPDATE SET count = count + 1, at = excluded.at RETURNING count
"""
_PRUNE_STARTS = "DELETE FROM started WHERE at < ?"
_ENVELOPE = "body, content_type, content_encoding, headers, properties"
_INSERT = f"""
INSERT INTO messages (queue, priority, visible_at, {_ENVELOPE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
# A message is waiting unless a consumer holds a live lease on it.
_WAITING = "(lease IS NULL OR visible_at <= ?)"
_ACK = "DELETE FROM messages WHERE id = ? AND lease = ?"
_REQUEUE = "UPDATE messages SET visible_at = ?, lease = NULL WHERE id = ? AND lease = ?"
_EXTEND = "UPDATE messages SET visible_at = ? WHERE id = ? AND lease = ?"
_PURGE = f"DELETE FROM messages WHERE queue = ? AND {_WAITING}"
_LENGTH = f"SELECT count(*) FROM messages WHERE queue = ? AND {_WAITING}"
_BURY = f"""
INSERT INTO dead_letters (queue, priority, {_ENVELOPE}, reason, failed_at, delivery_count)
SELECT queue, priority, {_ENVELOPE}, ?, ?, delivery_count FROM messages WHERE id = ? AND lease = ?
"""
# A row that makes no envelope is buried with its columns made listable (see ``repaired``).
_BURY_BAD = f"""
INSERT INTO dead_letters (queue, priority, {_ENVELOPE}, reason, failed_at, delivery_count)
SELECT queue, priority, body, content_type, content_encoding, ?, ?, ?, ?, delivery_count
FROM messages WHERE id = ? AND lease = ?
"""
_UNBURY = f"""
INSERT INTO messages (queue, priority, visible_at, {_ENVELOPE})
SELECT queue, priority, ?, {_ENVELOPE} FROM dead_letters WHERE id = ?
"""
_LIST_DEAD = f"""
SELECT id, queue, {_ENVELOPE}, reason, failed_at FROM dead_letters
WHERE ?1 IS NULL OR queue = ?1 ORDER BY id LIMIT ?2
"""
_PURGE_DEAD = "DELETE FROM dead_letters WHERE ?1 IS NULL OR queue = ?1"


@frozen
class _Lease:
    """A delivery's tag: the row, and the lease taken by the fetch that delivered it.

    The lease token stops a consumer whose visibility timeout ran out from acking,
    requeueing or extending the message after another consumer received it.
    """

    id: int
    token: int


@final
class SqliteTransport:
    """A durable broker in one SQLite file, shared by the processes of one machine.

    A fetched message stays in its table with ``visible_at`` pushed ``visibility_timeout``
    seconds ahead; an ack deletes it, and if the consumer dies it becomes visible again.

    :param url: ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("sqlite", SqliteConfig)
        self._db = Database(database_path(url), settings, _SCHEMA)
        self._visibility_timeout = config.visibility_timeout
        self._poll_interval = settings.poll_interval
        self._fanout = SqliteBroadcast(database_path(url), settings)

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        """Send to every current subscriber of ``channel`` (remote control, events)."""
        self._fanout.broadcast(channel, envelope)

    def subscribe(self, channel: str) -> SqliteSubscription:
        return self._fanout.subscribe(channel)

    def record_start(self, key: str) -> int:
        """Count a start of a message's task (``celeriac.plugin.StartLedger``); counts not
        touched for ``START_LEDGER_TTL`` are pruned now and then."""
        now = time.time()
        with self._db.transaction() as conn:
            count: int = conn.execute(_RECORD_START, (key, now)).fetchone()[0]
            if secrets.randbelow(256) == 0:
                conn.execute(_PRUNE_STARTS, (now - START_LEDGER_TTL,))
        return count

    def starts(self, key: str) -> int:
        with self._db.connection() as conn:
            row = conn.execute("SELECT count FROM started WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def forget_starts(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM started WHERE key = ?", (key,))

    def declare_queue(self, queue: str) -> None:
        """Nothing to do: a queue is just the ``queue`` column of its messages."""

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """Insert the envelopes in one transaction, visible after ``delay`` seconds.

        :param priority: 0-9, higher first; values outside are clamped, as RabbitMQ does.
        """
        visible_at = time.time() + max(delay, 0.0)
        level = min(max(priority, 0), 9)
        rows = [(queue, level, visible_at, *envelope_columns(env)) for env in envelopes]
        if rows:
            with self._db.transaction() as conn:
                conn.executemany(_INSERT, rows)

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Lease up to ``limit`` visible messages, highest priority first, then oldest visible first."""
        found, reserve = _fetch_statements(len(queues))

        def attempt() -> list[Delivery] | None:
            now = time.time()
            token = secrets.randbits(63)
            with self._db.connection() as conn:
                # Look before taking the write lock, so that consumers polling an empty
                # queue only read and never hold up producers or each other.
                if conn.execute(found, (*queues, now)).fetchone() is None:
                    return None
                args = (now + self._visibility_timeout, token, *queues, now, max(limit, 0))
                rows = conn.execute(reserve, args).fetchall()
            # RETURNING yields rows in no particular order; within one batch, which the
            # pool runs concurrently anyway, priority then age (row id) is close enough.
            rows.sort(key=lambda row: (-row[2], row[0]))
            deliveries = []
            for row in rows:
                try:
                    deliveries.append(_delivery(row, token))
                except BadRowError as exc:
                    self._bury_bad_row(row, token, f"cannot read message row {row[0]}: {exc}")
            return deliveries or None

        return poll(attempt, timeout, first=_FIRST_POLL, cap=self._poll_interval) or []

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._execute_many(_ACK, _keys(deliveries))

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Make the messages visible again at once (their delivery count is kept), or delete them."""
        if not requeue:
            self.ack(deliveries)
            return
        now = time.time()
        rows = [(now, *key) for key in _keys(deliveries)]
        self._execute_many(_REQUEUE, rows)

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew the leases that no other consumer has taken over."""
        until = time.time() + self._visibility_timeout
        rows = [(until, *key) for key in _keys(deliveries)]
        self._execute_many(_EXTEND, rows)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the message to ``dead_letters``; nothing happens if its lease was lost."""
        lease = _lease(delivery)
        with self._db.transaction() as conn:
            if conn.execute(_BURY, (reason, time.time(), lease.id, lease.token)).rowcount:
                conn.execute("DELETE FROM messages WHERE id = ?", (lease.id,))

    def _bury_bad_row(self, row: tuple[Any, ...], token: int, reason: str) -> None:
        """Dead-letter a row no envelope can be made of, so the rows beside it still run."""
        log.error("dead-lettering a message of %r: %s", row[1], reason)
        headers, properties = repaired(row[-2], row[-1])
        with self._db.transaction() as conn:
            args = (headers, properties, reason, time.time(), row[0], token)
            if conn.execute(_BURY_BAD, args).rowcount:
                conn.execute("DELETE FROM messages WHERE id = ?", (row[0],))

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self._db.connection() as conn:
            rows = conn.execute(_LIST_DEAD, (queue, limit)).fetchall()
        return [_dead_letter(row) for row in rows]

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        """Publish the message again, visible now and counted as never delivered."""
        try:
            key = int(dead_letter_id)
        except ValueError:
            return False
        with self._db.transaction() as conn:
            if not conn.execute(_UNBURY, (time.time(), key)).rowcount:
                return False
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (key,))
        return True

    def purge_dead_letters(self, queue: str | None = None) -> int:
        """Delete the dead letters of ``queue`` (None: of every queue) and count them."""
        with self._db.connection() as conn:
            return conn.execute(_PURGE_DEAD, (queue,)).rowcount

    def purge(self, queue: str) -> int:
        """Delete the queue's waiting messages (delayed ones included, leased ones kept)."""
        with self._db.connection() as conn:
            return conn.execute(_PURGE, (queue, time.time())).rowcount

    def queue_length(self, queue: str) -> int:
        """Count the queue's waiting messages: delayed ones included, leased ones not."""
        with self._db.connection() as conn:
            count: int = conn.execute(_LENGTH, (queue, time.time())).fetchone()[0]
        return count

    def close(self) -> None:
        self._db.close()
        self._fanout.close()

    def _execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            with self._db.transaction() as conn:
                conn.executemany(sql, rows)


@functools.lru_cache(maxsize=32)
def _fetch_statements(queue_count: int) -> tuple[str, str]:
    """The look-up and reservation statements for ``queue_count`` queues."""
    visible = f"queue IN ({', '.join('?' * queue_count)}) AND priority IN ({_PRIORITIES}) AND visible_at <= ?"
    found = f"SELECT 1 FROM messages WHERE {visible} LIMIT 1"
    reserve = f"""
        UPDATE messages SET visible_at = ?, lease = ?, delivery_count = delivery_count + 1
        WHERE id IN (SELECT id FROM messages WHERE {visible} ORDER BY priority DESC, visible_at, id LIMIT ?)
        RETURNING id, queue, priority, delivery_count, {_ENVELOPE}
    """
    return found, reserve


def _delivery(row: tuple[Any, ...], token: int) -> Delivery:
    row_id, queue, _priority, delivery_count, *envelope = row
    return Delivery(
        envelope=envelope_from_row(*envelope),
        queue=queue,
        tag=_Lease(row_id, token),
        delivery_count=delivery_count,
    )


def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    row_id, queue, *envelope, reason, failed_at = row
    return DeadLetter(
        id=str(row_id), queue=queue, envelope=envelope_from_row(*envelope), reason=reason, failed_at=failed_at
    )


def _lease(delivery: Delivery) -> _Lease:
    if not isinstance(delivery.tag, _Lease):
        raise TypeError(f"{delivery!r} was not fetched from a SqliteTransport")
    return delivery.tag


def _keys(deliveries: Sequence[Delivery]) -> list[tuple[int, int]]:
    return [(lease.id, lease.token) for lease in map(_lease, deliveries)]
