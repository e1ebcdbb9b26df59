"""The Celery side of the benchmark: one no-op task, on the broker named by ``BENCH_BROKER_URL``.

The worker imports this module (``celery -A bench_celery worker``); the benchmark builds its
producer app with :func:`make_app` so that each run gets a fresh database file.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from typing import Any

from celery import Celery
from kombu.transport.sqlalchemy import Transport as SqlaTransport
from sqlalchemy import event
from sqlalchemy.engine import Engine

TASK_NAME = "bench.noop"
#: kombu's own value (1 s), kept to restore it when Celery runs on its defaults.
DEFAULT_POLLING_INTERVAL: float = SqlaTransport.polling_interval
_SQLITE_PREFIXES = ("sqla+sqlite:///", "db+sqlite:///")


def noop() -> None:
    return None


def make_app(
    broker: str, backend: str, poll_interval: float | None, *, wal: bool, key_prefix: str | None = None
) -> Celery:
    """An app on ``broker`` whose idle worker looks for messages every ``poll_interval`` s.

    :param poll_interval: None keeps kombu's default.

    :param wal: put SQLite files in WAL mode and open connections with ``synchronous=NORMAL``,
        celeriac's SQLite defaults; SQLAlchemy's are a rollback journal and
        ``synchronous=FULL``, which syncs the disk at every commit. Matching them compares
        the frameworks at the same durability rather than two SQLite configurations.
    :param key_prefix: on Redis, kombu's and the result backend's ``global_keyprefix``, so that
        runs share a server without seeing, or deleting, each other's keys.
    """
    if wal:
        for url in (broker, backend):
            _set_wal(url)
        if not event.contains(Engine, "connect", _synchronous_normal):
            event.listen(Engine, "connect", _synchronous_normal)
    elif event.contains(Engine, "connect", _synchronous_normal):
        event.remove(Engine, "connect", _synchronous_normal)
    # kombu's SQLAlchemy transport hands its transport options to ``create_engine``, so the
    # polling interval (how long an idle consumer sleeps between two looks) is only
    # settable on the transport class.
    SqlaTransport.polling_interval = DEFAULT_POLLING_INTERVAL if poll_interval is None else poll_interval
    app = Celery("bench", broker=broker, backend=backend)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if broker.startswith("sqs:"):  # moto's server, started by run.py; kombu's SQS options
        app.conf.update(
            broker_transport_options={
                "region": "us-east-1",
                "queue_name_prefix": key_prefix or "",
                "polling_interval": DEFAULT_POLLING_INTERVAL if poll_interval is None else poll_interval,
            },
            result_backend_transport_options={"global_keyprefix": key_prefix or ""},
        )
    elif key_prefix:
        app.conf.update(
            broker_transport_options={"global_keyprefix": key_prefix},
            result_backend_transport_options={"global_keyprefix": key_prefix},
        )
    app.task(name=TASK_NAME)(noop)
    return app


def _set_wal(url: str) -> None:
    """The journal mode is a property of the file: set once, it holds for every connection."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            with closing(sqlite3.connect(url[len(prefix) :])) as conn:
                conn.execute("PRAGMA journal_mode=WAL")


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


if "BENCH_BROKER_URL" in os.environ:
    app = make_app(
        os.environ["BENCH_BROKER_URL"],
        os.environ["BENCH_BACKEND_URL"],
        float(os.environ["BENCH_POLL_INTERVAL"]) if os.environ.get("BENCH_POLL_INTERVAL") else None,
        wal=os.environ.get("BENCH_SQLITE_WAL") == "1",
        key_prefix=os.environ.get("BENCH_KEY_PREFIX") or None,
    )
