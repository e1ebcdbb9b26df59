"""A real worker (in a thread) sending events, on the in-memory broker and on a SQLite file."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import testing
from celeriac._contract.plugins import AUTOLOAD_KILL_SWITCH
from celeriac._worker import heartbeat
from celeriac.plugin import Broadcaster
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac.testing import MemoryTransport
from celeriac.testing import worker_thread
from celeriac_events import ClusterState
from celeriac_events import EventReceiver
from celeriac_events import subscribe_events

AppFactory = Callable[..., Celeriac]
#: Stamped on every event, as in Celery.
STAMPS = {"type", "timestamp", "hostname", "utcoffset", "pid", "clock"}
HOST = "events@test"


@pytest.fixture(params=["memory", "sqlite"])
def make_app(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppFactory]:
    monkeypatch.delenv(AUTOLOAD_KILL_SWITCH, raising=False)
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    apps: list[Celeriac] = []

    def factory(*plugins: object, **settings: Any) -> Celeriac:
        settings.setdefault("broker", broker)
        app = Celeriac("tests", plugins=[testing, *plugins], env={}, config=False, **settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> float:
    """Heartbeats every 0.3 s instead of 2 s, to keep the tests short."""
    monkeypatch.setattr(heartbeat, "HEARTBEAT_INTERVAL", 0.3)
    return 0.3


Events = list[dict[str, Any]]


def listen(app: Celeriac) -> EventReceiver:
    transport = app.transport
    assert isinstance(transport, Broadcaster)
    return subscribe_events(transport, app.codec)


def collect(receiver: EventReceiver, until: Callable[[Events], bool], timeout: float = 10.0) -> Events:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(seen):
        assert time.monotonic() < deadline, f"not seen in time; got {[e['type'] for e in seen]}"
        seen.extend(receiver.get(0.1))
    return seen


def types_seen(*wanted: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: set(wanted) <= {e["type"] for e in seen}


def beat_with(**match: Any) -> Callable[[Events], bool]:
    def seen_one(seen: Events) -> bool:
        beats = (e for e in seen if e["type"] == "worker-heartbeat")
        return any(all(e.get(k) == v for k, v in match.items()) for e in beats)

    return seen_one


def first(seen: list[dict[str, Any]], type_: str, **match: Any) -> dict[str, Any]:
    return next(e for e in seen if e["type"] == type_ and all(e.get(k) == v for k, v in match.items()))


def test_a_worker_broadcasts_celery_events(make_app: AppFactory, fast_heartbeat: float) -> None:
    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom() -> None:
        raise ValueError("boom")

    receiver = listen(app)  # before the worker: worker-online too
    with worker_thread(app, send_events=True, hostname=HOST, concurrency=2):
        ok = add.delay(2, 3)
        bad = boom.delay()
        assert ok.get(timeout=10) == 5
        with pytest.raises(ValueError, match="boom"):
            bad.get(timeout=10)
        seen = collect(receiver, types_seen("task-succeeded", "task-failed", "worker-heartbeat"))
    seen += collect(receiver, types_seen("worker-offline"))
    receiver.close()

    assert all(e.keys() >= STAMPS and e["hostname"] == HOST for e in seen)
    types = [e["type"] for e in seen]
    assert types[0] == "worker-online" and types[-1] == "worker-offline"
    online = first(seen, "worker-online")
    assert online["sw_ident"] == "celeriac" and online["sw_ver"] and online["sw_sys"]
    received = first(seen, "task-received", uuid=ok.id)
    assert (received["name"], received["args"], received["kwargs"]) == (add.name, "(2, 3)", "{}")
    assert received["retries"] == 0 and received["root_id"] == ok.id and received["parent_id"] is None
    assert first(seen, "task-started", uuid=ok.id)
    succeeded = first(seen, "task-succeeded", uuid=ok.id)
    assert isinstance(succeeded["runtime"], float) and succeeded["runtime"] >= 0
    assert succeeded["result"] == "5"  # a repr, as Celery sends it
    failed = first(seen, "task-failed", uuid=bad.id)
    assert "ValueError" in failed["exception"] and "boom" in failed["exception"]
    beat = first(seen, "worker-heartbeat")
    assert beat["freq"] == fast_heartbeat
    assert {"active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"} <= beat.keys()
    assert len(beat["loadavg"]) == 3
    # Each worker's events are stamped with a growing Lamport clock.
    assert len({e["clock"] for e in seen}) == len(seen)

    state = ClusterState()
    state.apply_all(seen)
    assert state.task_counts == {"SUCCESS": 1, "FAILURE": 1}
    assert not state.workers[HOST].online


def test_heartbeats_report_processed_and_active(make_app: AppFactory, fast_heartbeat: float) -> None:
    app = make_app()
    gate = threading.Event()

    @app.task
    def wait() -> None:
        gate.wait(10)

    receiver = listen(app)
    with worker_thread(app, send_events=True, hostname=HOST, concurrency=2):
        wait.delay()
        collect(
            receiver, lambda seen: any(e.get("active") == 1 for e in seen if e["type"] == "worker-heartbeat")
        )
        gate.set()
        collect(
            receiver,
            lambda seen: any(e.get("processed") == 1 for e in seen if e["type"] == "worker-heartbeat"),
        )
    receiver.close()


def test_events_off_sends_nothing_and_starts_no_thread(make_app: AppFactory) -> None:
    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    receiver = listen(app)
    # Threads of this worker only: an app another test of this process left to the garbage
    # collector may still hold its task-sent thread (it ends when that app is collected).
    before = set(threading.enumerate())
    with worker_thread(app, hostname=HOST):
        assert add.delay(1, 1).get(timeout=10) == 2
        started = set(threading.enumerate()) - before
        assert not [t for t in started if t.name.startswith("celeriac-events")]
    assert receiver.get(0.7) == []


def test_remote_control_turns_events_on(make_app: AppFactory) -> None:
    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    receiver = listen(app)
    with worker_thread(app, hostname=HOST):
        deadline = time.monotonic() + 10
        while not app.control.ping(timeout=0.5, limit=1):
            assert time.monotonic() < deadline
        replies = app.control.broadcast("enable_events", reply=True, timeout=2, limit=1)
        assert replies == [{HOST: {"ok": "task events enabled"}}]
        result = add.delay(1, 1)
        assert result.get(timeout=10) == 2
        seen = collect(receiver, types_seen("task-succeeded"))
    assert first(seen, "task-received", uuid=result.id)["name"] == add.name


def test_jsonl_and_log_sinks_in_a_worker(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="celeriac.events")
    path = tmp_path / "events.jsonl"
    app = make_app(events={"sinks": ["jsonl", "log"], "file": str(path), "batch_interval": 0.1})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    receiver = listen(app)
    with worker_thread(app, send_events=True, hostname=HOST):
        result = add.delay(1, 2)
        assert result.get(timeout=10) == 3
    written = [json.loads(line) for line in path.read_text().splitlines()]
    types = [e["type"] for e in written]
    assert types[0] == "worker-online" and types[-1] == "worker-offline"
    assert {"task-received", "task-started", "task-succeeded"} <= set(types)
    assert f"task-succeeded {HOST} uuid='{result.id}'" in caplog.text
    assert receiver.get(0.3) == []  # no broker sink configured: nothing broadcast


class PlainTransport:
    """A transport without fan-out: the broker sink cannot work on it."""

    def __init__(self) -> None:
        self._inner = MemoryTransport()

    def __getattr__(self, name: str) -> Any:
        if name in {"broadcast", "subscribe"}:
            raise AttributeError(name)
        return getattr(self._inner, name)


class PlainPlugin:
    @hookimpl
    def celeriac_add_transports(self) -> Sequence[TransportSpec]:
        return [TransportSpec(schemes=("plain",), factory=lambda url, config: PlainTransport())]


def test_a_broker_without_fan_out_is_reported_once_and_the_worker_runs(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PlainPlugin(), broker="plain://", result_store="memory://")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app, send_events=True, hostname=HOST):
        assert add.delay(1, 2).get(timeout=10) == 3
    assert "has no broadcast channel: the events broker sink sends nothing" in caplog.text
    assert "never sent" not in caplog.text
