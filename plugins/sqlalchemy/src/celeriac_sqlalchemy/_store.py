"""The SQL result store: Celery's tables through an SQLAlchemy 2 engine.

- The engine keeps a pool of connections. One the server closed (a restart, an idle
  timeout) fails its statement, which SQLAlchemy reports as a disconnect, dropping the pool's
  older connections: the work is run again at once on a new one (``pool_pre_ping`` would
  instead test each connection with a round trip before every use). A process forked from one that
  used the engine (a prefork child) starts its own pool.
- Tables are created on first use, by whichever process comes first.
- ``store`` is one transaction: an UPDATE that skips a SUCCESS row, then an INSERT when no row
  existed; two writers inserting one id at once make one retry.
- A chord part is a row in ``celeriac_chord_parts`` (its primary key makes a redelivered part
  count once) and an increment of the chord's row in ``celeriac_chords``, in one transaction:
  the row lock makes concurrent increments take turns, so one sees the final count.
- Rows expire ``result_expires`` after ``date_done`` (as Celery's ``backend_cleanup`` has
  it): readers skip them and a writer deletes them every ``sweep_interval`` seconds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar
from typing import final

import sqlalchemy as sa

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import ResultRecord
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac.plugin import redact_url
from celeriac_sqlalchemy._config import SqlConfig
from celeriac_sqlalchemy._statements import count_part
from celeriac_sqlalchemy._statements import upsert_tasks
from celeriac_sqlalchemy._tables import SUCCESS
from celeriac_sqlalchemy._tables import group_record
from celeriac_sqlalchemy._tables import make_tables
from celeriac_sqlalchemy._tables import record_of
from celeriac_sqlalchemy._tables import row_values
from celeriac_sqlalchemy._tables import utcnow

T = TypeVar("T")
log = logging.getLogger("celeriac.sqlalchemy")
_CHUNK = 500
_ATTEMPTS = 4


def engine_url(url: str) -> str:
    """Celery's ``db+postgresql://...`` as SQLAlchemy's ``postgresql://...``."""
    if not url.startswith("db+"):
        raise ConfigError(f"result_store {redact_url(url)!r}: SQL stores are given as db+<SQLAlchemy URL>")
    return url[len("db+") :]


@final
class SqlResultStore:
    """Task results in Celery's ``celery_taskmeta`` table, chords counted in celeriac's tables.

    :param url: ``db+<dialect>[+driver]://...``, as Celery's ``result_backend`` takes it.
    """

    def __init__(self, url: str, config: Config) -> None:
        self.url = url
        self._settings = config.section("sqlalchemy", SqlConfig)
        self._sa_url = engine_url(url)
        self._horizon = config.result_expires if config.result_expires > 0 else None
        s = self._settings
        self._metadata, self.tasks, self.groups, self.chords, self.parts = make_tables(
            s.task_table, s.group_table, s.schema
        )
        self._engine: sa.Engine | None = None
        self._pid = 0
        self._reached = False  # has this process reached the database yet?
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + s.sweep_interval
        self._sweeping = threading.Lock()
        t = self.tasks.c
        self._columns = (t.task_id, t.status, t.result, t.traceback, t.children, t.date_done)

    # --- connections --------------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """The engine of this process, made (and the tables created) on first use."""
        engine = self._engine
        if engine is not None and self._pid == os.getpid():
            return engine
        with self._lock:
            if self._engine is not None and self._pid != os.getpid():
                self._engine.dispose(close=False)  # the parent's connections stay the parent's
                self._engine = None
            if self._engine is None:
                self._engine = self._create()
                self._pid = os.getpid()
            return self._engine

    def _create(self) -> sa.Engine:
        s = self._settings
        try:
            engine = sa.create_engine(
                self._sa_url,
                pool_pre_ping=s.pool_pre_ping,
                pool_recycle=s.pool_recycle,
                **({"pool_size": s.pool_size, "max_overflow": s.max_overflow} if not self._is_sqlite else {}),
            )
        except ImportError as exc:
            raise ConfigError(
                f"result_store {redact_url(self.url)}: its database driver is not installed ({exc})"
            ) from exc
        except sa.exc.ArgumentError as exc:
            raise ConfigError(f"result_store {redact_url(self.url)}: {exc}") from exc
        if engine.dialect.name in ("mysql", "mariadb"):
            sa.event.listen(engine, "connect", _strict_mysql)
        self._run(lambda: self._create_tables(engine))
        return engine

    @property
    def _is_sqlite(self) -> bool:
        return self._sa_url.startswith("sqlite")

    def _create_tables(self, engine: sa.Engine) -> None:
        # Two processes may both find a table missing and both create it: the loser's error
        # is the table existing, so looking again succeeds.
        for attempt in range(_ATTEMPTS):
            try:
                self._metadata.create_all(engine, checkfirst=True)
                return
            except (sa.exc.ProgrammingError, sa.exc.IntegrityError, sa.exc.OperationalError):
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _run(self, work: Callable[[], T]) -> T:
        """Run ``work``, retrying what a retry can fix: a lost insert race or a deadlock (at
        once), and, once this process has reached the database, a connection that broke or
        is refused (a restart), with back-off for up to ``retry_timeout`` seconds. A database
        not reached is a StoreUnreachableError naming the URL with its password masked."""
        deadline: float | None = None
        delay = 0.05
        stale_retried = False
        for attempt in itertools.count():
            try:
                result = work()
            except sa.exc.IntegrityError:
                if attempt >= _ATTEMPTS - 1:
                    raise
                continue
            except sa.exc.DataError as exc:
                # A value the column cannot hold (over a MySQL BLOB's 64 KiB): the task fails
                # with the reason rather than coming back to fail the same way.
                raise ValueRefusedError(f"the database refused the result: {_first_line(exc)}") from exc
            except sa.exc.DBAPIError as exc:
                if _deadlock(exc) and attempt < _ATTEMPTS - 1:
                    continue
                if exc.connection_invalidated and not stale_retried:
                    # A pooled connection the server closed (a restart, an idle timeout):
                    # SQLAlchemy has dropped the pool's older connections; a new one may work.
                    stale_retried = True
                    continue
                if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and not (
                    exc.connection_invalidated
                ):
                    raise
                if self._reached:
                    deadline = deadline or time.monotonic() + self._settings.retry_timeout
                    if time.monotonic() < deadline:
                        log.warning(
                            "%s: %s; trying again in %.2f s", redact_url(self.url), _first_line(exc), delay
                        )
                        time.sleep(delay)
                        delay = min(delay * 2, 1.0)
                        continue
                raise StoreUnreachableError(self.url, redact_url(_first_line(exc))) from exc
            self._reached = True
            return result
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # --- results ------------------------------------------------------------------------------

    def store(self, record: ResultRecord) -> None:
        """Save the state, unless a SUCCESS is stored already: one statement on PostgreSQL,
        MySQL/MariaDB and SQLite (an upsert that leaves a SUCCESS row as it is)."""
        self.store_many([record])

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        """``store`` for each record, in one transaction (and one statement where the
        database has an upsert): pools that finish many tasks at once save them together."""
        rows = [{"task_id": record.task_id, **row_values(record)} for record in records]

        def write() -> None:
            with self.engine.begin() as conn:
                upsert = upsert_tasks(self.tasks, conn.dialect.name)
                if upsert is not None:
                    conn.execute(upsert, rows)
                    return
                t = self.tasks.c
                for row in rows:  # any other database: update, else insert
                    values = {k: v for k, v in row.items() if k != "task_id"}
                    changed = conn.execute(
                        sa.update(self.tasks)
                        .where(t.task_id == row["task_id"], t.status != SUCCESS)
                        .values(**values)
                    ).rowcount
                    if (
                        not changed
                        and conn.execute(sa.select(t.id).where(t.task_id == row["task_id"])).first() is None
                    ):
                        conn.execute(sa.insert(self.tasks).values(**row))

        if rows:
            self._run(write)
            self._sweep_when_due()

    def get(self, task_id: str) -> ResultRecord | None:
        found = self.get_many([task_id])[0]
        if found is None:
            return self._celery_group(task_id)
        return found

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        t = self.tasks.c

        def read() -> dict[str, ResultRecord]:
            found: dict[str, ResultRecord] = {}
            with self.engine.connect() as conn:
                for start in range(0, len(task_ids), _CHUNK):
                    query = sa.select(*self._columns).where(t.task_id.in_(task_ids[start : start + _CHUNK]))
                    cutoff = self._cutoff()
                    if cutoff is not None:
                        query = query.where(sa.or_(t.date_done.is_(None), t.date_done > cutoff))
                    found.update((row[0], record_of(row)) for row in conn.execute(query))
            return found

        found = self._run(read) if task_ids else {}
        return [found.get(task_id) for task_id in task_ids]

    def _celery_group(self, group_id: str) -> ResultRecord | None:
        """A group Celery saved in its group table, as celeriac's group record."""
        g = self.groups.c

        def read() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(sa.select(g.result).where(g.taskset_id == group_id)).scalar()

        value = self._run(read)
        return None if value is None else group_record(group_id, value)

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Read until the task reaches one of ``states``: every 2 ms at first, doubling up to
        ``[sqlalchemy] poll_interval``; None when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            record = self.get_many([task_id])[0]
            if record is not None and record.state in states:
                return record
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            time.sleep(delay if remaining is None else min(delay, remaining))
            delay = min(delay * 2, self._settings.poll_interval)

    def forget(self, task_id: str) -> None:
        def delete() -> None:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(self.tasks).where(self.tasks.c.task_id == task_id))

        self._run(delete)

    # --- chords -------------------------------------------------------------------------------

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        """Count a finished header task once; True for the call that completes the chord."""
        if size <= 0:
            log.error("chord %s: its size is not in its body (sent by a Celery client?)", group_id)
            return False
        return self._run(lambda: self._count_part(group_id, task_id)) == size

    def _count_part(self, group_id: str, task_id: str) -> int:
        with self.engine.begin() as conn:
            return count_part(conn, self.chords, self.parts, group_id, task_id)

    # --- expiry -------------------------------------------------------------------------------

    def _cutoff(self) -> dt.datetime | None:
        return None if self._horizon is None else utcnow() - dt.timedelta(seconds=self._horizon)

    def sweep(self) -> int:
        """Delete expired results, Celery's expired groups and celeriac's chord rows now."""
        self._next_sweep = time.monotonic() + self._settings.sweep_interval
        cutoff = self._cutoff()
        if cutoff is None:
            return 0

        def delete() -> int:
            with self.engine.begin() as conn:
                deleted = conn.execute(sa.delete(self.tasks).where(self.tasks.c.date_done < cutoff)).rowcount
                deleted += conn.execute(
                    sa.delete(self.groups).where(self.groups.c.date_done < cutoff)
                ).rowcount
                conn.execute(sa.delete(self.parts).where(self.parts.c.done_at < cutoff))
                conn.execute(sa.delete(self.chords).where(self.chords.c.updated_at < cutoff))
                return int(deleted)

        return self._run(delete)

    def _sweep_when_due(self) -> None:
        if self._horizon is None or time.monotonic() < self._next_sweep:
            return
        if not self._sweeping.acquire(blocking=False):
            return
        try:
            if time.monotonic() >= self._next_sweep:
                self.sweep()
        except Exception:  # a failed sweep loses nothing: the next one catches up
            log.warning("sweeping expired results failed", exc_info=True)
        finally:
            self._sweeping.release()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None


def _strict_mysql(dbapi_connection: Any, _record: Any) -> None:
    """A value too long for its column is an error, never cut (MySQL's non-strict modes truncate)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_TRANS_TABLES')")
    finally:
        cursor.close()


def _first_line(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig).strip() if exc.orig is not None else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _deadlock(exc: sa.exc.DBAPIError) -> bool:
    """A deadlock or serialization failure: the transaction may simply run again."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    args = getattr(exc.orig, "args", ())
    return code in ("40001", "40P01") or bool(args and args[0] in (1213, 1205))
