"""Test support for suites on a real SQL database: a database of the test's own on the local
PostgreSQL or MariaDB (dropped afterwards), and a PostgreSQL cluster of the test's own that it
may stop and start (Debian's ``initdb``/``pg_ctl``, on a free port). Importing this module
imports no driver and connects to nothing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresCluster", "mariadb_url", "postgres_cluster", "postgres_url", "private_database"]


def postgres_url() -> str:
    """``POSTGRES_URL``, or the local server's ``test`` database (trust authentication)."""
    return os.environ.get("POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def mariadb_url() -> str:
    """``MARIADB_URL``, or the local server's ``test`` database as root without a password."""
    return os.environ.get("MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@contextlib.contextmanager
def private_database(url: str, *, name: str = "celeriac_test") -> Iterator[str]:
    """A fresh database on ``url``'s server, yielded as a URL of the same form; dropped on leaving.

    The server not answering skips the test with the reason (fails under ``CI=true``).
    """
    import sqlalchemy as sa

    from celeriac.testing import service_unreachable

    database = f"{name}_{secrets.token_hex(5)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {database}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unreachable(f"no database server at {sa.make_url(url).render_as_string()}: {exc.orig}")
    try:
        yield sa.make_url(url).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database}"))
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """A PostgreSQL cluster in a directory of its own, run as the ``postgres`` user."""

    def __init__(self, bindir: Path, directory: Path, port: int) -> None:
        self.bindir = bindir
        self.directory = directory
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, *command: str, timeout: float = 60.0) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._as_postgres(
            str(self.bindir / "initdb"),
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        self._as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(
            str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop"
        )

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running cluster of the test's own on a free port, stopped and deleted afterwards;
    skipped with the reason when Debian's PostgreSQL binaries are missing (failed under CI)."""
    from celeriac.testing import service_unreachable

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or (os.geteuid() == 0 and shutil.which("runuser") is None):
        service_unreachable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl)")
    directory = Path(tempfile.mkdtemp(prefix="celeriac-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PostgresCluster(Path(found[-1]).parent, directory, _free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
