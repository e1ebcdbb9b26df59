"""Revocation and remote control, on the in-memory broker and on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import TaskRevokedError
from celeriac import states
from celeriac import testing
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

AppFactory = Callable[..., Celeriac]


@pytest.fixture(params=["memory", "sqlite"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AppFactory:
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"

    def factory(**settings: Any) -> Celeriac:
        return Celeriac("tests", broker=broker, plugins=[testing], env={}, config=False, **settings)

    return factory


def test_revoked_queued_task_is_skipped(make_app: AppFactory) -> None:
    app = make_app()
    ran: list[int] = []

    @app.task
    def work(n: int) -> None:
        ran.append(n)

    with worker_thread(app, concurrency=1):
        wait_for(lambda: bool(app.control.ping(timeout=0.5, limit=1)))
        gate = threading.Event()

        @app.task
        def block() -> None:
            gate.wait(20)  # released by the test once the revoke is in

        block.delay()
        doomed = work.delay(1)
        doomed.revoke()
        # Commands are handled in order: a reply means the revoke is in. The first reply ends the
        # wait, so the long timeout costs nothing unless the machine is slow.
        assert app.control.ping(timeout=10, limit=1)
        kept = work.delay(2)
        gate.set()
        kept.get(timeout=5)
        with pytest.raises(TaskRevokedError):
            doomed.get(timeout=5)
    assert ran == [2]
    assert doomed.state == states.REVOKED


def test_revoking_a_finished_task_keeps_its_success(make_app: AppFactory) -> None:
    app = make_app()

    @app.task
    def done() -> int:
        return 1

    with worker_thread(app):
        result = done.delay()
        assert result.get(timeout=5) == 1
        result.revoke()
    assert result.state == states.SUCCESS


def test_ping_and_destination(make_app: AppFactory) -> None:
    app = make_app()
    with worker_thread(app, hostname="alpha@test"):
        wait_for(lambda: bool(app.control.ping(timeout=0.5, limit=1)))
        assert app.control.ping(timeout=10, limit=1) == [{"alpha@test": {"ok": "pong"}}]
        assert app.control.ping(timeout=0.3, destination=["beta@test"]) == []


def test_revokes_survive_a_restart_with_a_statedb(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    statedb = tmp_path / "worker.state"
    ran: list[str] = []

    @app.task
    def work(tag: str) -> None:
        ran.append(tag)

    with worker_thread(app, statedb=str(statedb)):
        wait_for(lambda: bool(app.control.ping(timeout=0.5, limit=1)))
        app.control.broadcast("revoke", {"task_id": ["later-1"]})
        wait_for(statedb.exists)
    # Sent after the worker stopped: only the state file can know it was revoked.
    work.apply_async(("revoked",), task_id="later-1")
    work.apply_async(("kept",), task_id="later-2")
    with worker_thread(app, statedb=str(statedb)):
        app.AsyncResult("later-2").get(timeout=5)
        wait_for(lambda: app.AsyncResult("later-1").state == states.REVOKED)
    assert ran == ["kept"]


def test_unknown_command_gets_an_error_reply(make_app: AppFactory) -> None:
    app = make_app()
    with worker_thread(app, hostname="w@test"):
        wait_for(lambda: bool(app.control.ping(timeout=0.5, limit=1)))
        [reply] = app.control.broadcast("no_such_command", reply=True, timeout=10, limit=1)
    assert reply == {"w@test": {"error": "unknown command 'no_such_command'"}}
