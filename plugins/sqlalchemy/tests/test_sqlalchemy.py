"""celeriac-sqlalchemy on the PostgreSQL and MariaDB running here (and a SQLite file), each in a
database of the module's own: results through a worker, SUCCESS kept, Celery's database backend
reading what celeriac wrote and the reverse, chords counted once under concurrent stores,
expiry, and clear errors for a server that does not answer or a driver that is missing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import ConfigError
from celeriac.plugin import ResultRecord
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac.testing import worker_thread
from celeriac_sqlalchemy import sql_result_store
from celeriac_sqlalchemy.testing import mariadb_url
from celeriac_sqlalchemy.testing import postgres_url
from celeriac_sqlalchemy.testing import private_database

DATABASES = ("postgresql+psycopg", "postgresql", "mariadb", "sqlite")


@pytest.fixture(scope="module", params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``db+...`` URL on a database of this module's own."""
    kind: str = request.param
    if kind == "sqlite":
        yield f"db+sqlite:///{tmp_path_factory.mktemp('sql')}/results.db"
        return
    server = mariadb_url() if kind == "mariadb" else postgres_url()
    with private_database(server) as url:
        # Celery's plain form "postgresql://": SQLAlchemy's default driver, psycopg2.
        plain = url.replace("postgresql+psycopg://", "postgresql://") if kind == "postgresql" else url
        yield f"db+{plain}"


def make_app(url: str, **settings: Any) -> Celeriac:
    return Celeriac(
        "sqltests",
        broker="memory://",
        result_store=url,
        plugins=[celeriac.testing],
        env={},
        config=False,
        **settings,
    )


def test_results_through_a_worker(db_url: str) -> None:
    app = make_app(db_url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom() -> None:
        raise KeyError("missing")

    with worker_thread(app, concurrency=4):
        results = [add.delay(n, n) for n in range(20)]
        assert [r.get(timeout=20) for r in results] == [2 * n for n in range(20)]
        failed = boom.delay()
        with pytest.raises(KeyError, match="missing"):
            failed.get(timeout=20)
    assert failed.state == states.FAILURE
    assert "KeyError" in (failed.traceback or "")
    app.close()


def test_success_is_never_replaced_and_other_types_round_trip(db_url: str) -> None:
    app = make_app(db_url)
    store = app.result_store
    store.store(app.results.encode("sql-final", states.SUCCESS, {"n": 1}))
    store.store(app.results.encode("sql-final", states.FAILURE, ValueError("late duplicate")))
    record = store.get("sql-final")
    assert record is not None and app.results.decode(record).result == {"n": 1}
    binary = ResultRecord(
        task_id="sql-binary",
        state=states.RETRY,
        payload=b"\x80\x05 bytes",
        content_type="application/x-python-serialize",
        content_encoding="binary",
    )
    store.store(binary)
    assert store.get("sql-binary") == binary
    store.forget("sql-binary")
    assert store.get_many(["sql-binary", "sql-final"])[0] is None
    app.close()


def test_chord_parts_count_once_under_concurrent_stores(db_url: str) -> None:
    # Eight stores (eight connection pools, as eight workers would have) count 200 parts, each
    # part twice: exactly one call completes the chord.
    app = make_app(db_url)
    stores = [sql_result_store(db_url, app.config) for _ in range(8)]
    completed: list[str] = []
    errors: list[BaseException] = []
    parts = [f"part-{n}" for n in range(200)] * 2

    def count(worker: int) -> None:
        try:
            for part in parts[worker::8]:
                if stores[worker].chord_part_done("sql-chord", part, 200):
                    completed.append(part)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=count, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(completed) == 1, completed
    for store in stores:
        store.close()
    app.close()


def test_results_expire_and_are_swept(db_url: str) -> None:
    # 2 s: MySQL's DATETIME (Celery's column) keeps whole seconds, so a row may look up to 1 s older.
    app = make_app(db_url, result_expires=2.0, sqlalchemy={"sweep_interval": 0.1})
    store = app.result_store
    store.store(app.results.encode("sql-brief", states.SUCCESS, 1))
    assert store.get("sql-brief") is not None
    assert store.wait("sql-brief", frozenset({"NEVER"}), timeout=2.2) is None  # waits past the expiry
    assert store.get("sql-brief") is None
    store.store(app.results.encode("sql-later", states.SUCCESS, 2))  # a write past sweep_interval sweeps
    from celeriac_sqlalchemy._store import SqlResultStore

    assert isinstance(store, SqlResultStore)
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        ids = set(conn.execute(sa.select(store.tasks.c.task_id)).scalars())
    assert "sql-brief" not in ids and "sql-later" in ids
    app.close()


def test_a_result_the_column_cannot_hold_fails_its_task(db_url: str) -> None:
    # Celery's result column is a BLOB on MySQL/MariaDB: 65,535 bytes. Elsewhere it holds this.
    app = make_app(db_url)

    @app.task
    def big(n: int) -> str:
        return "x" * n

    with worker_thread(app, concurrency=1):
        result = big.delay(100_000)
        if "mysql" in db_url:
            with pytest.raises(ValueRefusedError, match=r"the database refused the result: .*Data too long"):
                result.get(timeout=20)
            assert result.state == states.FAILURE
        else:
            assert result.get(timeout=20) == "x" * 100_000
    app.close()


# --- Celery's database backend ------------------------------------------------------------------


def celery_app(db_url: str) -> Any:
    from celery import Celery

    app = Celery("interop", broker="memory://", backend=db_url)
    app.conf.result_serializer = "json"
    return app


def test_celery_reads_what_celeriac_wrote_and_the_reverse(db_url: str) -> None:
    pytest.importorskip("celery")
    app = make_app(db_url)

    @app.task
    def add(x: int, y: int) -> dict[str, int]:
        return {"sum": x + y}

    @app.task
    def boom() -> None:
        raise KeyError("missing")

    with worker_thread(app, concurrency=2):
        ok, failed = add.delay(20, 22), boom.delay()
        assert ok.get(timeout=20) == {"sum": 42}
        failed.get(timeout=20, propagate=False)

    celery = celery_app(db_url)
    try:
        assert celery.AsyncResult(ok.id).get(timeout=5) == {"sum": 42}
        assert celery.AsyncResult(ok.id).date_done is not None
        assert celery.AsyncResult(failed.id).state == "FAILURE"
        assert isinstance(celery.AsyncResult(failed.id).result, KeyError)

        celery.backend.store_result("celery-wrote", [1, "two"], "SUCCESS")
        celery.backend.store_result("celery-failed", ValueError("bad value"), "FAILURE")
        assert app.AsyncResult("celery-wrote").get(timeout=5) == [1, "two"]
        with pytest.raises(ValueError, match="bad value"):
            app.AsyncResult("celery-failed").get(timeout=5)
        # A group Celery saved (celery_tasksetmeta) is restored by celeriac.
        group = celery.GroupResult(
            "celery-group", [celery.AsyncResult("celery-wrote"), celery.AsyncResult(ok.id)]
        )
        group.save()
        from celeriac import GroupResult

        assert GroupResult.restore("celery-group", app).get(timeout=5) == [[1, "two"], {"sum": 42}]
    finally:
        celery.backend.session_manager.invalidate(celery.backend.url)
        app.close()


# --- bad input --------------------------------------------------------------------------------


def test_an_unreachable_server_is_named_with_the_password_masked() -> None:
    from celeriac_memcached.testing import free_port

    url = f"db+postgresql+psycopg://app:s3cret@127.0.0.1:{free_port()}/results"
    app = make_app(url)
    with pytest.raises(StoreUnreachableError) as raised:
        app.AsyncResult("x").state  # noqa: B018 - reading the state is the test
    message = str(raised.value)
    assert f"db+postgresql+psycopg://app:***@127.0.0.1:{url.split(':')[3]}" in message, message
    assert "s3cret" not in message and "refused" in message.lower()
    app.close()


def test_a_missing_driver_is_named() -> None:
    app = make_app("db+mysql+mysqldb://root:pw@127.0.0.1/test")
    with pytest.raises(
        ConfigError, match=r"db\+mysql\+mysqldb://root:\*\*\*@127.0.0.1/test: its database driver"
    ):
        app.AsyncResult("x").state  # noqa: B018
    app.close()
