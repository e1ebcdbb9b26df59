"""Celery's signals over the lifecycle hooks: names, arguments, per-app and per-sender receivers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from celeriac import Celeriac
from celeriac import TaskCall
from celeriac import signals
from celeriac._cli.logs import setup_logging
from celeriac._contract import hookspecs
from celeriac._contract.lifecycle import Lifecycle
from celeriac.testing import join
from celeriac.testing import worker_thread


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = Celeriac("tests", env={}, config=False, broker="memory://")
    yield instance
    instance.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., Callable[..., Any]]]:
    """Connect receivers for one test; every one is disconnected after it."""
    made: list[tuple[signals.Signal, Any]] = []

    def connect(signal: signals.Signal, **options: Any) -> Callable[..., Any]:
        uid = object()
        made.append((signal, uid))

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            return signal.connect(fn, dispatch_uid=uid, **options)

        return register

    yield connect
    for signal, uid in made:
        signal.disconnect(dispatch_uid=uid)


def test_task_signals_fire_with_celerys_arguments(app: Celeriac, connect: Any) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str) -> Callable[..., None]:
        def receive(sender: Any = None, **kwargs: Any) -> None:
            seen.append((name, {"sender": sender, **kwargs}))

        return receive

    for name in (
        "task_received",
        "task_prerun",
        "task_postrun",
        "task_success",
        "task_failure",
        "task_retry",
    ):
        connect(getattr(signals, name))(recorder(name))

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.boom")
    def boom() -> None:
        raise KeyError("k")

    @app.task(name="t.again", bind=True, max_retries=1)
    def again(self: TaskCall) -> str:
        assert self.request is not None
        if not self.request.retries:
            raise self.retry(countdown=0)
        return "ok"

    with worker_thread(app, pool="threads") as worker:
        ok = add.delay(2, 3)
        bad = boom.delay()
        again.delay()
        join(worker)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, kwargs in seen:
        by_name.setdefault(name, []).append(kwargs)
    prerun = next(k for k in by_name["task_prerun"] if k["task_id"] == ok.id)
    assert prerun["sender"] is add and prerun["task"] is add
    assert list(prerun["args"]) == [2, 3] and prerun["kwargs"] == {}
    postrun = next(k for k in by_name["task_postrun"] if k["task_id"] == ok.id)
    assert (postrun["retval"], postrun["state"]) == (5, "SUCCESS")
    assert {"sender": add, "result": 5, "signal": signals.task_success} in by_name["task_success"]
    failure = by_name["task_failure"][0]
    assert failure["task_id"] == bad.id and isinstance(failure["exception"], KeyError)
    assert "KeyError" in failure["traceback"]
    assert by_name["task_retry"][0]["sender"] is again
    assert {k["request"].id for k in by_name["task_received"]} >= {ok.id, bad.id}


def test_sender_and_app_limit_the_receivers(app: Celeriac, connect: Any) -> None:
    other = Celeriac("other", env={}, config=False, broker="memory://")
    by_name: list[Any] = []
    by_task: list[Any] = []
    for_other_app: list[Any] = []
    for_this_app: list[Any] = []

    @app.task(name="t.one")
    def one() -> int:
        return 1

    @app.task(name="t.two")
    def two() -> int:
        return 2

    connect(signals.task_success, sender="t.one")(lambda sender, result, **_: by_name.append(result))
    connect(signals.task_success, sender=two)(lambda sender, result, **_: by_task.append(result))
    connect(signals.task_success, app=other)(lambda sender, result, **_: for_other_app.append(result))
    connect(signals.task_success, app=app)(lambda sender, result, **_: for_this_app.append(result))
    with worker_thread(app, pool="threads") as worker:
        one.delay()
        two.delay()
        join(worker)
    assert by_name == [1]
    assert by_task == [2]
    assert for_other_app == []
    assert sorted(for_this_app) == [1, 2]
    other.close()


def test_a_header_added_before_publish_reaches_the_task(app: Celeriac, connect: Any) -> None:
    published: list[str] = []

    @connect(signals.before_task_publish)
    def add_header(sender: str, headers: dict[str, Any], routing_key: str, **_: Any) -> None:
        headers["tenant"] = "acme"

    @connect(signals.after_task_publish)
    def record(sender: str, headers: dict[str, Any], **_: Any) -> None:
        published.append(f"{sender} {headers['id']}")

    @app.task(name="t.tenant", bind=True)
    def tenant(self: TaskCall) -> Any:
        assert self.request is not None
        return self.request.message.extra_headers.get("tenant")

    with worker_thread(app, pool="threads") as worker:
        result = tenant.delay()
        join(worker)
    assert result.get(timeout=5) == "acme"
    assert f"t.tenant {result.id}" in published


def test_worker_signals_and_task_unknown(app: Celeriac, connect: Any) -> None:
    seen: list[tuple[str, Any]] = []
    for name in ("worker_init", "worker_ready", "worker_shutdown"):
        connect(getattr(signals, name))(lambda sender, _n=name, **_: seen.append((_n, sender)))
    unknown: list[str] = []
    connect(signals.task_unknown)(lambda sender, name, **kw: unknown.append(f"{name} {kw['id']}"))
    with worker_thread(app, pool="threads") as worker:
        missing = app.send_task("t.nobody", ())
        join(worker)
    assert seen == [("worker_init", worker), ("worker_ready", worker), ("worker_shutdown", worker)]
    assert unknown == [f"t.nobody {missing.id}"]


def test_nothing_connected_costs_nothing_and_a_failing_receiver_is_isolated(
    app: Celeriac, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A plugin manager with no plugins: what an app whose plugins implement no task hook has.
    pm = pluggy.PluginManager("celeriac")
    pm.add_hookspecs(hookspecs)
    lifecycle = Lifecycle(pm)
    assert not signals.task_prerun.receivers
    assert not lifecycle.implements("celeriac_task_prerun")

    @connect(signals.task_prerun)
    def broken(**_: Any) -> None:
        raise RuntimeError("receiver bug")

    assert lifecycle.implements("celeriac_task_prerun")

    @app.task(name="t.fine")
    def fine() -> str:
        return "fine"

    with worker_thread(app, pool="threads") as worker:
        result = fine.delay()
        join(worker)
    assert result.get(timeout=5) == "fine"
    assert "signal task_prerun receiver" in caplog.text


def test_worker_process_init_runs_in_each_prefork_child(tmp_path: Path, connect: Any) -> None:
    app = Celeriac("tests", env={}, config=False, broker=f"sqlite:///{tmp_path / 'broker.sqlite3'}")

    @connect(signals.worker_process_init)
    def open_connection(**_: Any) -> None:
        os.environ["TEST_SIGNALS_CHILD"] = str(os.getpid())

    @app.task(name="t.whoami")
    def whoami() -> list[str]:
        return [str(os.getpid()), os.environ.get("TEST_SIGNALS_CHILD", "")]

    with worker_thread(app, pool="prefork", concurrency=2) as worker:
        results = [whoami.delay() for _ in range(4)]
        join(worker, timeout=30)
    for result in results:
        pid, initialised = result.get(timeout=10)
        assert pid != str(os.getpid())
        assert initialised == pid  # the receiver ran in that child, not inherited from here
    app.close()


def test_setup_logging_receivers_replace_the_default_configuration(connect: Any) -> None:
    calls: list[dict[str, Any]] = []
    connect(signals.setup_logging)(lambda sender, **kwargs: calls.append(kwargs))
    root = logging.getLogger()
    handlers = list(root.handlers)
    setup_logging("warning")
    assert root.handlers == handlers
    assert calls[0]["loglevel"] == "WARNING" and "format" in calls[0]


def test_pool_restart_replaces_every_prefork_child(tmp_path: Path, connect: Any) -> None:
    app = Celeriac("tests", env={}, config=False, broker=f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    started = tmp_path / "children"

    @connect(signals.worker_process_init)
    def record(**_: Any) -> None:
        with started.open("a") as out:
            out.write(f"{os.getpid()}\n")

    @app.task(name="t.pid")
    def pid() -> int:
        return os.getpid()

    def children() -> set[str]:
        return set(started.read_text().split()) if started.exists() else set()

    with worker_thread(app, pool="prefork", concurrency=2) as worker:
        before = {pid.delay().get(timeout=10) for _ in range(4)}
        first = children()
        replies = app.control.broadcast("pool_restart", {}, reply=True, timeout=5, limit=1)
        assert replies == [{worker.hostname: {"ok": "restarting pool"}}]
        deadline = time.monotonic() + 20
        while len(children() - first) < 2:  # two new children ran worker_process_init
            assert time.monotonic() < deadline, (first, children())
            time.sleep(0.05)
        after = {pid.delay().get(timeout=10) for _ in range(4)}
    assert not {str(p) for p in after} & first
    assert {str(p) for p in before} <= first
    app.close()


def test_pool_restart_on_a_thread_pool_says_why_not(app: Celeriac) -> None:
    tmp = Celeriac("tests", env={}, config=False, broker="memory://")
    with worker_thread(tmp, pool="threads") as worker:
        replies = tmp.control.broadcast("pool_restart", {}, reply=True, timeout=5, limit=1)
    assert "cannot restart apart from it" in replies[0][worker.hostname]["error"]
    tmp.close()
