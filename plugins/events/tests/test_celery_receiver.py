"""Celery's own event classes and ours read each other, on a real Redis and RabbitMQ.

Our :class:`BrokerSink` publishes through a celeriac transport and Celery's
``EventReceiver`` captures; Celery's ``EventDispatcher`` publishes (one event per message,
and buffered ``task.multi`` lists) and :func:`subscribe_events` captures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.events.receiver import EventReceiver

from celeriac.plugin import Broadcaster
from celeriac.plugin import Config
from celeriac.plugin import Envelope
from celeriac_events import BrokerSink
from celeriac_events import subscribe_events

pytestmark = pytest.mark.timeout(60)


class Broker:
    def __init__(self, url: str, transport: Broadcaster, options: dict[str, Any]) -> None:
        self.url = url
        self.transport = transport
        self.options = options

    def celery(self) -> Celery:
        return Celery("interop", broker=self.url, broker_transport_options=self.options, set_as_current=False)


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "redis":
        from celeriac_redis import RedisConfig
        from celeriac_redis import make_transport

        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        settings = RedisConfig(layout="kombu", key_prefix=prefix, kombu_global_keyprefix=prefix)
        transport: Any = make_transport(url, Config(sections={"redis": settings}))
        options = {"global_keyprefix": prefix}
    else:
        from celeriac_amqp import make_transport as make_amqp

        url = request.getfixturevalue("amqp_url")
        transport = make_amqp(url, Config())
        options = {}
    yield Broker(url, transport, options)
    transport.close()


class ReadyReceiver(EventReceiver):  # type: ignore[misc]  # Celery is untyped
    """Celery's receiver, telling when its queue is bound (so nothing sent after is missed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready = threading.Event()

    def on_consume_ready(self, *args: Any, **kwargs: Any) -> None:
        self.ready.set()


def _event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "hostname": "w1@interop",
        "timestamp": time.time(),
        "utcoffset": 0,
        "pid": 1,
        **fields,
    }


def test_celerys_event_receiver_reads_ours(broker: Broker) -> None:
    app = broker.celery()
    captured: list[dict[str, Any]] = []
    done = threading.Event()
    heard = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("probe"):
            heard.set()
            return
        captured.append(event)
        if event["type"] == "worker-offline":
            done.set()

    with app.connection_for_read() as connection:
        receiver = ReadyReceiver(connection, handlers={"*": on_event}, app=app)
        ready = receiver.ready
        thread = threading.Thread(
            target=lambda: receiver.capture(limit=None, timeout=20, wakeup=False), daemon=True
        )
        thread.start()
        assert ready.wait(10), "Celery's receiver did not start consuming"
        # On Redis, kombu subscribes to the fan-out channel after on_consume_ready, and pub/sub
        # drops what is published before that: probe until the receiver hears one.
        deadline = time.monotonic() + 10
        while not heard.is_set():
            assert time.monotonic() < deadline, "Celery's receiver never heard a probe"
            probe = BrokerSink(broker.transport, interval=30.0)
            probe.send(_event("worker-heartbeat", probe=True, freq=2.0, active=0, processed=0))
            probe.close()
            heard.wait(0.1)
        sink = BrokerSink(broker.transport, interval=30.0)
        for event in (
            _event("worker-online", sw_ident="celeriac"),
            _event("task-received", uuid="t1", name="proj.add", args="(1, 2)", kwargs="{}"),
            _event("task-started", uuid="t1"),
            _event("task-succeeded", uuid="t1", result="3", runtime=0.01),
            _event("worker-heartbeat", freq=2.0, active=0, processed=1),
            _event("worker-offline"),
        ):
            sink.send(event)
        sink.close()
        assert done.wait(10), f"only {[e['type'] for e in captured]} arrived"
        receiver.should_stop = True
        thread.join(10)
    assert [e["type"] for e in captured] == [
        "worker-online",
        "task-received",
        "task-started",
        "task-succeeded",
        "worker-heartbeat",
        "worker-offline",
    ]
    assert captured[3]["result"] == "3" and captured[3]["hostname"] == "w1@interop"


def test_we_read_celerys_single_and_buffered_events(broker: Broker) -> None:
    app = broker.celery()
    with subscribe_events(broker.transport) as receiver, app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname="c1@interop", buffer_group=["task"])
        dispatcher.send("worker-online", sw_ident="py-celery")
        dispatcher.send("task-received", uuid="t1", name="proj.add")
        dispatcher.send("task-succeeded", uuid="t1", result="3", runtime=0.01)
        dispatcher.flush()  # the task group goes out as one task.multi list
        dispatcher.send("worker-offline")
        dispatcher.close()
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(found) < 4 and time.monotonic() < deadline:
            found.extend(receiver.get(timeout=0.5))
    assert sorted(e["type"] for e in found) == sorted(
        ["worker-online", "task-received", "task-succeeded", "worker-offline"]
    )
    assert {e["hostname"] for e in found} == {"c1@interop"}


def test_our_receiver_reads_our_sink_and_unrouted_broadcasts(broker: Broker) -> None:
    with subscribe_events(broker.transport) as receiver:
        sink = BrokerSink(broker.transport, interval=30.0)
        sink.send(_event("worker-online"))
        sink.send(_event("task-received", uuid="t1"))
        sink.send(_event("task-succeeded", uuid="t1"))
        sink.close()
        # What workers before routing keys sent: a list with no routing key (Redis: the bare channel).
        old = json.dumps([_event("task-started", uuid="t2")]).encode()
        broker.transport.broadcast("celeryev", Envelope(body=old, content_type="application/json"))
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(found) < 4 and time.monotonic() < deadline:
            found.extend(receiver.get(timeout=0.5))
    assert [e["type"] for e in found] == ["worker-online", "task-received", "task-succeeded", "task-started"]
