"""What the transport and the stores share: URL parsing, the connection, and polling."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from typing import final

from celeriac.plugin import ConfigError
from celeriac.plugin import after_fork
from celeriac_sqlite._config import SqliteConfig

T = TypeVar("T")

SCHEME = "sqlite"
_PREFIX = "sqlite:///"
_URL_FORMS = (
    "sqlite:///relative/path.sqlite3 (from the current directory) or sqlite:////absolute/path.sqlite3"
)


def database_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names (SQLAlchemy's convention), made absolute.

    Resolving now keeps the file the same if the process changes directory later.
    """
    path = url[len(_PREFIX) :] if url.startswith(_PREFIX) else ""
    # Query strings would be silently ignored, so they are refused rather than accepted.
    if not path or path.endswith("/") or "?" in path or "#" in path:
        raise ConfigError(f"invalid SQLite URL {url!r}: expected {_URL_FORMS}")
    return Path(path).absolute()


# One lock per database file, per process. The transport and the result store usually share
# one file through separate connections; without a common lock their writes collide inside
# SQLite, whose busy handler backs off by sleeping whole milliseconds, which halved a worker's
# throughput. A Python lock hands over in microseconds. The registry only ever maps a file to
# its lock, so sharing it across apps in one process is correct, not incidental.
# A child made by fork() gets locks of its own (one inherited may be held by a thread that does
# not exist in the child): the registry is emptied there, and each Database drops its lock.
class _FileLocks:
    """One lock per database file in this process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}

    def get(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

    def forget(self) -> None:
        self._guard = threading.Lock()
        self._locks = {}


_FILE_LOCKS = _FileLocks()


@final
class Database:
    """One SQLite connection, opened on first use and shared by a process's threads under a lock.

    The threads of a process, across every component using the same file, queue on one
    Python lock instead of competing for SQLite's write lock; processes coordinate through
    WAL and the busy timeout.

    :param schema: a script creating the component's tables if they are missing.
    """

    def __init__(self, path: Path, settings: SqliteConfig, schema: str) -> None:
        self.path = path
        self._settings = settings
        self._schema = schema
        self._lock: threading.Lock | None = None
        self._conn: sqlite3.Connection | None = None
        # The registry first: a child's Database then takes a fresh lock from an empty one.
        after_fork(_FILE_LOCKS, _FileLocks.forget)
        after_fork(self, Database._forget)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Hold the connection; each statement outside :meth:`transaction` commits on its own."""
        lock = self._lock
        if lock is None:
            lock = self._lock = _FILE_LOCKS.get(self.path)
        with lock:
            yield self._connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run several statements as one write transaction.

        ``BEGIN IMMEDIATE`` takes the write lock up front, where the busy timeout applies; a
        deferred transaction that later upgrades to writing can fail at once with SQLITE_BUSY.
        """
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock or _FILE_LOCKS.get(self.path):
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _forget(self) -> None:
        """In a forked child: drop (never close, which could disturb the parent's locks) the
        parent's connection and lock; the next use opens its own."""
        self._conn = None
        self._lock = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _open(self.path, self._settings, self._schema)
        return self._conn


def _open(path: Path, settings: SqliteConfig, schema: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            path, timeout=settings.busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.OperationalError as exc:  # a missing directory or a directory as the path
        raise ConfigError(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        # WAL lets readers (queue_length, result polling) run while one process writes.
        _switch_to_wal(conn, settings.busy_timeout)
        conn.execute(f"PRAGMA synchronous={settings.synchronous}")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the file: SQLite does
    not apply the busy timeout to this switch, so two processes opening a new file at the
    same moment (a worker and beat) would otherwise fail with "database is locked"."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def poll(attempt: Callable[[], T | None], timeout: float | None, *, first: float, cap: float) -> T | None:
    """Call ``attempt`` until it returns something other than None or ``timeout`` passes.

    Sleeps start at ``first`` and double up to ``cap``: what arrives soon after a miss is seen
    within milliseconds, and a long wait costs one query per ``cap``. ``timeout=None`` waits forever.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = first
    while True:
        result = attempt()
        if result is not None:
            return result
        if deadline is None:
            time.sleep(delay)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(delay, remaining))
        delay = min(delay * 2, cap)
