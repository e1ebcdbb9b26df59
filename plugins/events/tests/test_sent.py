"""``task-sent`` events from publishing apps (``[events] task_send_sent_event``)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import testing
from celeriac._contract.plugins import AUTOLOAD_KILL_SWITCH
from celeriac.plugin import Broadcaster
from celeriac_events import SentEvents
from celeriac_events import subscribe_events
from celeriac_events._sent import PLUGIN_NAME


@pytest.fixture(autouse=True)
def _autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_KILL_SWITCH, raising=False)


def make_app(**events: Any) -> Celeriac:
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False, events=events)


def collect(receiver: Any, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found.extend(receiver.get(timeout=0.2))
    return found


def test_off_by_default_nothing_is_registered() -> None:
    app = make_app()
    assert app.plugins.pm.get_plugin(PLUGIN_NAME) is None
    app.close()


def test_published_tasks_are_reported_with_celerys_fields() -> None:
    app = make_app(task_send_sent_event=True, batch_interval=0.05)

    @app.task(name="tests.add")
    def add(x: int, y: int) -> int:
        return x + y

    sent = app.plugins.pm.get_plugin(PLUGIN_NAME)
    assert isinstance(sent, SentEvents)
    transport = app.transport
    assert isinstance(transport, Broadcaster)
    with subscribe_events(transport, app.codec) as receiver:
        first = add.apply_async((2, 3), countdown=30, queue="q1")
        second = add.delay(1, y=2)
        events = collect(receiver, 2)
    assert [e["uuid"] for e in events] == [first.id, second.id]
    one = events[0]
    assert one["type"] == "task-sent"
    assert one["hostname"] == app.origin
    assert (one["name"], one["args"], one["kwargs"], one["retries"]) == ("tests.add", "(2, 3)", "{}", 0)
    assert (one["queue"], one["exchange"], one["routing_key"]) == ("q1", "", "q1")
    assert dt.datetime.fromisoformat(one["eta"]) > dt.datetime.now(dt.UTC)
    assert one["root_id"] == first.id and one["parent_id"] is None
    assert events[1]["kwargs"] == "{'y': 2}"
    assert {"timestamp", "utcoffset", "pid", "clock", "expires"} <= set(one)
    sent.close()
    app.close()


def test_publish_does_not_wait_for_the_broadcast() -> None:
    app = make_app(task_send_sent_event=True, batch_interval=30.0)
    sent = app.plugins.pm.get_plugin(PLUGIN_NAME)
    assert isinstance(sent, SentEvents)
    app.send_task("tests.anything", (1,))
    assert sent.flush() == 1  # still buffered after publish returned: it went out only now
    sent.close()
    app.close()


def test_closing_the_app_sends_what_is_buffered_and_stops_the_thread() -> None:
    app = make_app(task_send_sent_event=True, batch_interval=30.0)
    transport = app.transport
    assert isinstance(transport, Broadcaster)
    before = set(threading.enumerate())
    with subscribe_events(transport, app.codec) as receiver:
        result = app.send_task("tests.anything", (1,))
        started = set(threading.enumerate()) - before
        flushing = [thread for thread in started if thread.name == "celeriac-events-broker"]
        assert len(flushing) == 1
        app.close()  # not 30 s later: the buffered event goes out now, on the way out
        assert [e["uuid"] for e in collect(receiver, 1)] == [result.id]
    assert not flushing[0].is_alive()
    again = app.send_task("tests.anything", (2,))  # the app still works after close
    sent = app.plugins.pm.get_plugin(PLUGIN_NAME)
    assert isinstance(sent, SentEvents)
    assert sent.flush() == 1, again.id
    app.close()
