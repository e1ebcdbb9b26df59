"""Remote-control commands against a running worker, on the in-memory broker and SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import testing
from celeriac.plugin import ControlCommand
from celeriac.plugin import hookimpl
from celeriac.testing import join
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

AppFactory = Callable[..., Celeriac]
HOST = "w1@test"


@pytest.fixture(params=["memory", "sqlite"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AppFactory:
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"

    def factory(*plugins: object, **settings: Any) -> Celeriac:
        return Celeriac("tests", broker=broker, plugins=[testing, *plugins], env={}, config=False, **settings)

    return factory


def ask(app: Celeriac, method: str, **arguments: Any) -> Any:
    [reply] = app.control.broadcast(method, arguments, reply=True, timeout=3, limit=1)
    return reply[HOST]


def wait_ready(app: Celeriac) -> None:
    wait_for(lambda: app.control.ping(timeout=0.3, limit=1), 5, "the worker answering a ping")


def test_inspect_running_and_reserved(make_app: AppFactory) -> None:
    app = make_app()
    started, release = threading.Event(), threading.Event()

    @app.task(name="tests.hold")
    def hold(tag: str) -> None:
        started.set()
        release.wait(5)

    with worker_thread(app, concurrency=1, prefetch=2, hostname=HOST):
        wait_ready(app)
        running = hold.delay("first")
        waiting = hold.delay("second")
        assert started.wait(5)
        wait_for(lambda: [r["id"] for r in ask(app, "reserved")] == [waiting.id], 10, "the second reserved")
        try:
            [active] = ask(app, "active")
            assert (active["id"], active["name"], active["args"]) == (running.id, "tests.hold", "('first',)")
            assert [r["id"] for r in ask(app, "reserved")] == [waiting.id]
            found = ask(app, "query_task", ids=[running.id, waiting.id, "nope"])
            assert found[running.id][0] == "active"
            assert found[waiting.id][0] == "reserved"
            assert ask(app, "scheduled") == []
            assert "tests.hold" in ask(app, "registered")
            stats = ask(app, "stats")
            assert stats["active"] == 2
            assert stats["pool"] == {"implementation": "threads", "max-concurrency": 1}
        finally:
            release.set()


def test_conf_hides_passwords(make_app: AppFactory) -> None:
    app = make_app(result_store="memory://user:secret@host")
    with worker_thread(app, hostname=HOST):
        wait_ready(app)
        conf = ask(app, "conf")
    assert conf["result_store"] == "memory://user:***@host"
    assert conf["default_queue"] == "celery"


def test_rate_limit_at_run_time(make_app: AppFactory) -> None:
    app = make_app()
    stamps: list[float] = []

    @app.task(name="tests.tick")
    def tick() -> None:
        stamps.append(time.monotonic())

    with worker_thread(app, hostname=HOST, concurrency=2):
        wait_ready(app)
        assert ask(app, "rate_limit", task_name="tests.tick", rate_limit="10/s") == {
            "ok": "rate limit of tests.tick set to 10/s"
        }
        for result in [tick.delay() for _ in range(5)]:
            result.get(timeout=5)
        assert max(stamps) - min(stamps) >= 0.3
        assert "error" in ask(app, "rate_limit", task_name="no.such", rate_limit="1/s")
        assert "error" in ask(app, "rate_limit", task_name="tests.tick", rate_limit="fast")


def test_add_and_cancel_consumer(make_app: AppFactory) -> None:
    app = make_app()

    @app.task(name="tests.where")
    def where() -> str:
        return "ran"

    with worker_thread(app, hostname=HOST) as worker:
        wait_ready(app)
        result = where.apply_async(queue="extra")
        join(worker)  # a fetch round over: had it consumed "extra", it would hold the message
        assert app.transport.queue_length("extra") == 1
        assert result.state == "PENDING"
        assert ask(app, "add_consumer", queue="extra") == {"ok": "consuming from extra"}
        assert result.get(timeout=5) == "ran"
        assert {q["name"] for q in ask(app, "active_queues")} == {"celery", "extra"}
        assert ask(app, "cancel_consumer", queue="extra") == {"ok": "no longer consuming from extra"}
        assert "last queue" in ask(app, "cancel_consumer", queue="celery")["error"]
        after = where.apply_async(queue="extra")
        join(worker)
        join(worker)  # two rounds: the one under way at the cancel, and one begun after it
        assert app.transport.queue_length("extra") == 1
        assert after.state == "PENDING"


def test_a_fetch_under_way_at_cancel_consumer_gives_the_queues_messages_back(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    ran: list[int] = []

    @app.task(name="tests.mark")
    def mark(n: int) -> None:
        ran.append(n)

    fetch = app.transport.fetch
    cancelled: list[Any] = []

    def fetch_then_cancel(queues: Sequence[str], n: int, timeout: float) -> Any:
        deliveries = fetch(queues, n, timeout)
        if not cancelled and any(d.queue == "extra" for d in deliveries):
            # The cancel lands after this round took the message, before it reaches the pool.
            cancelled.append(ask(app, "cancel_consumer", queue="extra"))
        return deliveries

    monkeypatch.setattr(app.transport, "fetch", fetch_then_cancel)
    with worker_thread(app, hostname=HOST, queues=["celery", "extra"]) as worker:
        wait_ready(app)
        mark.apply_async((1,), queue="extra")
        wait_for(lambda: cancelled, 10, "the cancel during a fetch")
        assert cancelled == [{"ok": "no longer consuming from extra"}]
        mark.apply_async((2,), queue="celery")
        join(worker, ["celery"])
        assert ran == [2]
        assert app.transport.queue_length("extra") == 1  # given back, not run


def test_shutdown_command_stops_the_worker(make_app: AppFactory) -> None:
    app = make_app()
    worker = app.worker(hostname=HOST, poll_timeout=0.1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_ready(app)
    assert ask(app, "shutdown") == {"ok": "shutting down (warm)"}
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_commands_a_pool_or_setup_cannot_honour_say_why(make_app: AppFactory) -> None:
    app = make_app()
    with worker_thread(app, hostname=HOST):
        wait_ready(app)
        assert ask(app, "pool_grow", n=2) == {"error": "the threads pool cannot grow"}
        assert ask(app, "time_limit", task_name="x", soft=1) == {
            "error": "the threads pool does not enforce time limits"
        }


def test_plugins_add_commands(make_app: AppFactory) -> None:
    class Hello:
        @hookimpl
        def celeriac_add_control_commands(self) -> Sequence[ControlCommand]:
            return [ControlCommand(name="hello", handler=lambda mailbox, who="you": {"ok": f"hello {who}"})]

    app = make_app(Hello())
    with worker_thread(app, hostname=HOST):
        wait_ready(app)
        assert ask(app, "hello", who="ops") == {"ok": "hello ops"}


def test_a_command_to_a_missing_worker_times_out_cleanly(make_app: AppFactory) -> None:
    app = make_app()
    with worker_thread(app, hostname=HOST):
        wait_ready(app)
        began = time.monotonic()
        assert app.control.broadcast("ping", destination=["gone@host"], reply=True, timeout=0.5) == []
        assert 0.45 <= time.monotonic() - began < 2


def test_events_turned_on_and_off_at_run_time(make_app: AppFactory) -> None:
    received: list[dict[str, Any]] = []

    class Recorder:
        def send(self, event: Any) -> None:
            received.append(dict(event))

        def close(self) -> None:
            pass

    class SinkPlugin:
        @hookimpl
        def celeriac_add_event_sinks(self) -> Sequence[object]:
            return [Recorder()]

    app = make_app(SinkPlugin())

    @app.task(name="tests.noop")
    def noop() -> None:
        pass

    with worker_thread(app, hostname=HOST) as worker:  # events off by default
        wait_ready(app)
        noop.delay().get(timeout=5)
        assert not [e for e in received if e["type"].startswith("task-")]
        assert ask(app, "enable_events") == {"ok": "task events enabled"}
        done = noop.delay()
        done.get(timeout=5)
        wait_for(
            lambda: any(e["type"] == "task-succeeded" and e["uuid"] == done.id for e in received),
            5,
            "a task-succeeded event after enable_events",
        )
        assert ask(app, "disable_events") == {"ok": "task events disabled"}
        quiet = noop.delay()
        quiet.get(timeout=5)
        join(worker)  # its run over to the end, the success event it would have sent included
        # Events on again: once the next task's own event arrives, any event of the quiet
        # one, sent before it, would have arrived too.
        assert ask(app, "enable_events") == {"ok": "task events enabled"}
        marker = noop.delay()
        marker.get(timeout=5)
        wait_for(lambda: any(e.get("uuid") == marker.id for e in received), 5, "the marker task's events")
        assert not [e for e in received if e.get("uuid") == quiet.id]


def test_enable_events_without_a_sink_says_how_to_get_one() -> None:
    from types import SimpleNamespace

    from celeriac._worker.commands import enable_events
    from celeriac._worker.events import EventDispatcher

    mailbox: Any = SimpleNamespace(events=EventDispatcher([], "h", enabled=False))
    assert enable_events(mailbox) == {"error": "no event sink is installed (pip install celeriac-events)"}
    assert mailbox.events.enabled is False


def test_revoke_gathers_replies_from_the_workers_named(make_app: AppFactory) -> None:
    app = make_app()
    with worker_thread(app, hostname=HOST):
        wait_ready(app)
        [reply] = app.control.revoke(["r-1", "r-2"], reply=True, timeout=3, destination=[HOST])
        assert reply == {HOST: {"ok": "tasks r-1, r-2 flagged as revoked"}}
        assert app.control.revoke("r-3", reply=True, timeout=0.3, destination=["other@host"]) == []
        assert ask(app, "revoked") == ["r-1", "r-2"]  # the worker not named was not told
    assert app.AsyncResult("r-3").state == "REVOKED"  # recorded in the store whoever answers


def test_the_name_check_does_not_outlive_the_worker(make_app: AppFactory) -> None:
    """The start-up ping for another worker of the same name waits up to 2 s for replies; a
    worker stopped sooner ends it too (left running, it used a closing transport and, on
    SQLite, could hold the library's lock at a later fork)."""
    app = make_app()
    try:
        with worker_thread(app, hostname=HOST):
            assert any(thread.name == "celeriac-name" for thread in threading.enumerate())
        assert not [thread for thread in threading.enumerate() if thread.name == "celeriac-name"]
    finally:
        app.close()
