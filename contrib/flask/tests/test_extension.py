"""FlaskCeleriac: configuration from Flask's config, one celeriac app per Flask app, and every
task run inside its Flask app's context, on a real worker (in a thread, memory:// broker)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import current_app
from flask import g

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac.testing import join
from celeriac.testing import worker_thread
from celeriac_flask import FlaskCeleriac
from celeriac_flask import FlaskTask


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CELERIAC_* variables of the shell, and a directory without celeriac.toml."""
    for name in [n for n in __import__("os").environ if n.startswith("CELERIAC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_app(name: str = "web", **config: Any) -> Flask:
    app = Flask(name)
    app.config.update({"CELERIAC": {"broker": "memory://", "result_store": "memory://"}, **config})
    return app


@pytest.fixture
def extension(isolated: Path) -> Iterator[FlaskCeleriac]:
    ext = FlaskCeleriac()
    yield ext
    for app in list(ext._apps):
        app.extensions["celeriac"].close()


def test_config_comes_from_the_flask_config(extension: FlaskCeleriac) -> None:
    app = make_app(
        CELERIAC={
            "broker": "memory://",
            "result_store": "memory://",
            "default_queue": "web",
            "worker": {"concurrency": 3, "pool": "solo"},
            "tasks": {"proj.Slow": {"queue": "slow"}},
            "plugins": {"disable": ["webhooks"]},
        },
        CELERIAC_WORKER__CONCURRENCY=5,  # one key each, over the table: what from_prefixed_env sets
        CELERIAC_RESULT_EXPIRES=60,
    )
    extension.init_app(app)
    celeriac_app = app.extensions["celeriac"]
    assert isinstance(celeriac_app, Celeriac)
    config = celeriac_app.config
    assert (config.default_queue, config.worker.concurrency, config.worker.pool) == ("web", 5, "solo")
    assert config.result_expires == 60
    assert config.task("proj.Slow").queue == "slow"
    assert "webhooks" in config.plugins.disable
    assert extension.app_for(app) is celeriac_app


def test_flask_variables_from_prefixed_env_reach_celeriac(
    extension: FlaskCeleriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_CELERIAC_BROKER", "memory://")
    monkeypatch.setenv("FLASK_CELERIAC_WORKER__CONCURRENCY", "7")
    monkeypatch.setenv("FLASK_CELERIAC_TASK_DEFAULTS__MAX_RETRIES", "9")
    app = Flask("env")
    app.config.from_prefixed_env()
    extension.init_app(app)
    config = app.extensions["celeriac"].config
    assert (config.broker, config.worker.concurrency) == ("memory://", 7)
    assert config.task_defaults.max_retries == 9


def test_the_toml_file_lies_under_the_flask_config(extension: FlaskCeleriac, isolated: Path) -> None:
    (isolated / "celeriac.toml").write_text('default_queue = "from-file"\nresult_expires = 10\n')
    app = make_app(CELERIAC_RESULT_EXPIRES=20)
    extension.init_app(app)
    assert app.extensions["celeriac"].config.default_queue == "from-file"
    assert app.extensions["celeriac"].config.result_expires == 20
    unfiled = make_app("unfiled", CELERIAC_CONFIG_FILE=False)
    extension.init_app(unfiled)
    assert unfiled.extensions["celeriac"].config.default_queue == "celery"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"CELERIAC": {"brokr": "memory://"}}, "unknown key 'brokr'"),
        ({"CELERIAC": "memory://"}, "CELERIAC must be a dict"),
        ({"CELERIAC_WORKER__CONCURRENCY": "many"}, "concurrency"),
        ({"CELERIAC_CONFIG_FILE": "missing.toml"}, "missing.toml does not exist"),
        ({"CELERIAC": {"env": {}}}, "'env' is not a celeriac setting"),
    ],
)
def test_bad_config_is_one_error_naming_the_app_and_key(
    extension: FlaskCeleriac, config: dict[str, Any], message: str
) -> None:
    app = Flask("shop")
    app.config.update(config)
    with pytest.raises(ConfigError) as info:
        extension.init_app(app)
    assert "Flask app 'shop'" in str(info.value)
    assert message in str(info.value)
    assert "celeriac" not in app.extensions


def test_tasks_run_inside_the_flask_app_context_on_a_worker(extension: FlaskCeleriac) -> None:
    torn_down: list[tuple[int, int | None]] = []

    @extension.task
    def whoami(n: int) -> dict[str, Any]:
        assert not hasattr(g, "seen")  # a fresh context each run: nothing left by the last one
        g.seen = n
        return {"app": current_app.name, "setting": current_app.config["REPORT_TITLE"], "n": g.seen}

    app = make_app("reports", REPORT_TITLE="Sales")
    app.teardown_appcontext(lambda _exc: torn_down.append((threading.get_ident(), g.get("seen"))))
    extension.init_app(app)
    with worker_thread(app.extensions["celeriac"], concurrency=2) as worker:
        with app.app_context():
            results = [whoami.delay(n) for n in range(6)]
        join(worker)
    assert [r.get(timeout=0) for r in results] == [
        {"app": "reports", "setting": "Sales", "n": n} for n in range(6)
    ]
    # Each run's context was popped on the worker's thread: teardown handlers ran there.
    runs = [(thread, seen) for thread, seen in torn_down if seen is not None]
    assert sorted(seen for _, seen in runs) == list(range(6))
    assert threading.get_ident() not in {thread for thread, _ in runs}


def test_each_flask_app_has_its_own_celeriac_app(extension: FlaskCeleriac) -> None:
    @extension.task
    def title() -> str:
        return str(current_app.config["TITLE"])

    first, second = make_app("first", TITLE="one"), make_app("second", TITLE="two")
    extension.init_app(first)
    extension.init_app(second)
    assert first.extensions["celeriac"] is not second.extensions["celeriac"]
    with worker_thread(second.extensions["celeriac"]) as worker:
        with second.app_context():
            result = title.delay()
        join(worker)
        assert result.get(timeout=0) == "two"
    with first.app_context():
        assert title() == "one"  # a direct call runs in a context of the current app
        assert title.on(second).name == title.name
        assert title.on(second).app is second.extensions["celeriac"]


def test_a_task_declared_after_init_app_reaches_the_app(extension: FlaskCeleriac) -> None:
    app = make_app()
    extension.init_app(app)

    @extension.task(name="late.add", bind=True)
    def add(self: Any, x: int, y: int) -> list[Any]:
        return [x + y, self.request.id, current_app.name]

    assert isinstance(add, FlaskTask)
    assert "late.add" in app.extensions["celeriac"].tasks
    with worker_thread(app.extensions["celeriac"]) as worker:
        with app.app_context():
            result = add.apply_async((2, 3))
            with pytest.raises(TypeError, match=r"late\.add"):
                add.delay(1)  # checked in the caller, against the function's own signature
        join(worker)
    assert result.get(timeout=0) == [5, result.id, "web"]


def test_eager_mode_runs_the_task_in_its_own_context(extension: FlaskCeleriac) -> None:
    @extension.task
    def context_of() -> bool:
        return bool(getattr(g, "in_request", False))

    app = make_app(CELERIAC={"broker": "memory://", "task_always_eager": True})
    extension.init_app(app)
    with app.test_request_context():
        g.in_request = True
        assert context_of.delay().get(timeout=1) is False  # its own g, as on a worker


def test_an_async_task_stays_a_coroutine_function(extension: FlaskCeleriac) -> None:
    @extension.task
    async def fetch() -> str:
        await asyncio.sleep(0)
        return str(current_app.name)

    app = make_app("async-app")
    extension.init_app(app)
    registered = app.extensions["celeriac"].tasks[fetch.name]
    assert inspect.iscoroutinefunction(registered.fn)
    assert asyncio.run(registered.fn()) == "async-app"


def test_misuse_gets_a_clear_error(extension: FlaskCeleriac) -> None:
    @extension.task
    def noop() -> None:
        return None

    with pytest.raises(RuntimeError, match="no Flask app context"):
        noop.delay()
    app = make_app()
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        noop.delay()
    extension.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        extension.init_app(app)
    with pytest.raises(ValueError, match="declared twice"):
        extension.task(name=noop.name)(lambda: None)


def test_init_app_adds_the_flask_celeriac_command(extension: FlaskCeleriac) -> None:
    app = make_app()
    FlaskCeleriac(app)
    assert "celeriac" in app.cli.commands
    app.extensions["celeriac"].close()


def test_a_forked_child_opens_its_own_database_connections(extension: FlaskCeleriac, isolated: Path) -> None:
    import os

    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import text

    db = SQLAlchemy()
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{isolated / 'app.sqlite3'}")
    db.init_app(app)
    extension.init_app(app)
    with app.app_context():
        assert db.session.execute(text("select 1")).scalar() == 1
        db.session.remove()
        assert db.engine.pool.checkedin() == 1  # the parent's connection, pooled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it inherited, then leave at once
        code = 1
        try:
            with app.app_context():
                inherited = db.engine.pool.checkedin()
                works = db.session.execute(text("select 2")).scalar()
            os.write(write, f"{inherited} {works}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    report = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "0 2"  # nothing inherited in the pool; its own connection works
    with app.app_context():
        assert db.engine.pool.checkedin() == 1  # the parent's is untouched
        assert db.session.execute(text("select 3")).scalar() == 3
        db.session.remove()
        db.engine.dispose()


def test_canvas_and_apply_go_through_the_current_app(extension: FlaskCeleriac) -> None:
    from celeriac import chain

    @extension.task
    def double(n: int) -> int:
        return 2 * n * int(current_app.config["FACTOR"])

    app = make_app(FACTOR=1)
    extension.init_app(app)
    with worker_thread(app.extensions["celeriac"]) as worker:
        with app.app_context():
            assert double.apply((4,)).get(timeout=1) == 8
            result = chain(double.s(1), double.s(), double.si(5)).apply_async()
            mapped = double.map([1, 2, 3]).apply_async()
        join(worker)
    assert result.get(timeout=0) == 10
    assert mapped.get(timeout=0) == [2, 4, 6]
