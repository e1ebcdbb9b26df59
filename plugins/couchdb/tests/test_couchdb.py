"""The CouchDB result store against pouchdb-server (npm, ``make emulators``: CouchDB's HTTP API)
on a free port: the key-value contract, results, chords and expiry through a worker, and the
errors for a dead server, a wrong password and a missing database."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import chord
from celeriac import states
from celeriac.plugin import StoreUnreachableError
from celeriac.testing import check_key_value
from celeriac.testing import free_port
from celeriac.testing import local_server
from celeriac.testing import service_unreachable
from celeriac.testing import worker_thread

MakeApp = Callable[..., Celeriac]
ROOT = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def pouchdb_server(directory: Path) -> Iterator[str]:
    """pouchdb-server in memory on a free port (it writes its config and log in ``directory``)."""
    binary = Path(os.environ.get("POUCHDB_SERVER", ROOT / ".cache/npm/node_modules/.bin/pouchdb-server"))
    if not binary.exists():
        service_unreachable(f"pouchdb-server is not installed at {binary}: run make emulators")
    port = free_port()
    command = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with local_server(command, port, log=directory / "pouchdb-server.log"):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pouchdb_server(tmp_path_factory.mktemp("pouchdb")) as address:
        yield address


@pytest.fixture
def url(server: str) -> str:
    return f"couchdb://{server}/results-{secrets.token_hex(4)}"


@pytest.fixture
def make_app(url: str) -> Iterator[MakeApp]:
    apps: list[Celeriac] = []

    def make(**settings: Any) -> Celeriac:
        couchdb = {"timeout": 5.0, **settings.pop("couchdb", {})}
        app = Celeriac(
            "tests",
            broker="memory://",
            result_store=settings.pop("result_store", url),
            plugins=[celeriac.testing],
            env={},
            config=False,
            couchdb=couchdb,
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_key_value_contract(make_app: MakeApp) -> None:
    check_key_value(make_app().result_store.kv)  # type: ignore[attr-defined]


def test_results_chords_and_celerys_layout(make_app: MakeApp, url: str) -> None:
    import httpx

    app = make_app()

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task
    def fail() -> None:
        raise ValueError("broken on purpose")

    with worker_thread(app, concurrency=4):
        result = double.delay(21)
        assert result.get(timeout=20) == 42
        assert chord([double.s(n) for n in range(20)], total.s()).delay().get(timeout=30) == 380
        with pytest.raises(ValueError, match="broken on purpose"):
            fail.delay().get(timeout=20)
    document = httpx.get(f"http://{url.split('//')[1]}/celery-task-meta-{result.id}").json()
    meta = json.loads(document["value"])  # what Celery's CouchDB backend reads
    assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", 42, result.id)


def test_results_expire_and_are_swept(make_app: MakeApp) -> None:
    app = make_app(result_expires=1.0)

    @app.task
    def one() -> int:
        return 1

    with worker_thread(app, concurrency=1):
        result = one.delay()
        assert result.get(timeout=20) == 1
    deadline = time.monotonic() + 10
    while result.state != states.PENDING:
        assert time.monotonic() < deadline, "the result did not expire"
        time.sleep(0.1)
    assert app.result_store.sweep() >= 1  # type: ignore[attr-defined]


def test_unreachable_server_is_named(make_app: MakeApp) -> None:
    dead = f"couchdb://127.0.0.1:{free_port()}/results"
    app = make_app(result_store=dead, couchdb={"timeout": 1.0})
    with pytest.raises(StoreUnreachableError, match=rf"cannot reach the result store {dead}:"):
        app.AsyncResult("nope").state  # noqa: B018 - reading it is the test


def test_wrong_password_is_named(make_app: MakeApp, tmp_path: Path) -> None:
    import httpx

    with pouchdb_server(tmp_path) as address:
        httpx.put(f"http://{address}/_config/admins/alice", json="right-password").raise_for_status()
        url = f"couchdb://alice:wrong-password@{address}/results"
        app = make_app(result_store=url)
        with pytest.raises(StoreUnreachableError, match=r"credentials were refused \(401") as info:
            app.AsyncResult("nope").state  # noqa: B018
        assert "wrong-password" not in str(info.value) and f"alice:***@{address}/results" in str(info.value)
        right = make_app(result_store=f"couchdb://alice:right-password@{address}/results")
        assert right.AsyncResult("nope").state == states.PENDING


def test_missing_database_is_named(make_app: MakeApp, url: str) -> None:
    app = make_app(couchdb={"create_database": False})
    with pytest.raises(StoreUnreachableError, match=r"the database 'results-\w+' does not exist"):
        app.AsyncResult("nope").state  # noqa: B018


def test_an_expired_chord_set_starts_anew(make_app: MakeApp) -> None:
    """A chord outliving result_expires: its expired set (not yet deleted) is not counted on."""
    kv = make_app().result_store.kv  # type: ignore[attr-defined]
    key = f"celeriac-chord-parts-{secrets.token_hex(4)}"
    assert kv.add_member(key, "a", 1.0) == 1
    expired_at = time.time() + 2.0  # a second, rounded up to whole seconds (DynamoDB's ttl)
    while time.time() <= expired_at:  # the entry's own clock, not a synchronisation
        time.sleep(0.05)
    assert kv.add_member(key, "b", 60.0) == 1
    assert kv.add_member(key, "a", 60.0) == 2
    assert kv.add_member(key, "b", 60.0) == 0
    kv.delete(key)
