"""The sinks on their own: batching, overflow, the file's content, the log lines."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from celeriac.plugin import EventSink
from celeriac.testing import MemoryTransport
from celeriac_events import EVENT_CHANNEL
from celeriac_events import BrokerSink
from celeriac_events import EventBuffer
from celeriac_events import EventsConfig
from celeriac_events import JsonlSink
from celeriac_events import LogSink
from celeriac_events import decode_events
from celeriac_events import make_sinks


def event(n: int, type_: str = "task-started") -> dict[str, Any]:
    return {"type": type_, "hostname": "w@h", "timestamp": 1000.0 + n, "clock": n, "uuid": f"t{n}"}


def test_sinks_implement_the_protocol(tmp_path: Path) -> None:
    for sink in (BrokerSink(), JsonlSink(tmp_path / "e.jsonl"), LogSink()):
        assert isinstance(sink, EventSink)


def test_sinks_start_no_thread_and_open_no_file_until_an_event(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    path = tmp_path / "e.jsonl"
    sinks = make_sinks(EventsConfig(sinks=("broker", "jsonl", "log"), file=str(path)))
    assert [type(s) for s in sinks] == [BrokerSink, JsonlSink, LogSink]
    assert set(threading.enumerate()) == before
    assert not path.exists()
    for sink in sinks:
        sink.close()
    assert not path.exists()


# --- the broker sink ----------------------------------------------------------------------


def test_broker_sink_sends_one_envelope_per_flush() -> None:
    transport = MemoryTransport()
    subscription = transport.subscribe(EVENT_CHANNEL)
    sink = BrokerSink(transport, interval=0.05)
    for n in range(3):
        sink.send(event(n))
    envelopes = subscription.get(timeout=2)
    assert len(envelopes) == 1
    assert envelopes[0].content_type == "application/json"
    assert envelopes[0].headers == {"hostname": "w@h"}
    assert json.loads(envelopes[0].body) == [event(n) for n in range(3)]
    assert decode_events(envelopes[0]) == [event(n) for n in range(3)]
    sink.close()


def test_broker_sink_flushes_early_once_a_batch_is_full() -> None:
    transport = MemoryTransport()
    subscription = transport.subscribe(EVENT_CHANNEL)
    sink = BrokerSink(transport, interval=30.0)  # the interval alone would not flush in this test
    started = time.monotonic()
    for n in range(100):
        sink.send(event(n))
    envelopes = subscription.get(timeout=5)
    assert time.monotonic() - started < 5
    assert [e["clock"] for env in envelopes for e in decode_events(env)] == list(range(100))
    sink.send(event(100))
    assert subscription.get(timeout=0.2) == []  # one event waits for the interval ...
    sink.close()  # ... or for close, which sends what is left
    (last,) = subscription.get(timeout=1)
    assert decode_events(last) == [event(100)]


def test_broker_sink_drops_the_oldest_events_when_full(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="celeriac.events")
    transport = MemoryTransport()
    subscription = transport.subscribe(EVENT_CHANNEL)
    sink = BrokerSink(interval=0.05, max_buffer=10)  # not bound yet: events wait
    started = time.perf_counter()
    for n in range(25):
        sink.send(event(n))
    assert time.perf_counter() - started < 0.5  # never blocks
    assert subscription.get(timeout=0.1) == []
    sink.bind(transport)
    (envelope,) = subscription.get(timeout=2)
    assert [e["clock"] for e in decode_events(envelope)] == list(range(15, 25))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["event buffer full (max_buffer = 10): dropped the 15 oldest events"]
    sink.close()


def test_broker_sink_survives_a_failing_broker(caplog: pytest.LogCaptureFixture) -> None:
    class Down:
        def broadcast(self, channel: str, envelope: Any) -> None:
            raise ConnectionError("broker down")

        def subscribe(self, channel: str) -> Any:
            raise NotImplementedError

    sink = BrokerSink(Down(), interval=10.0)
    sink.send(event(1))
    assert sink.flush() == 1  # lost, and logged; the caller is not disturbed
    assert "could not deliver 1 events" in caplog.text
    sink.close()


def test_broker_sink_without_transport_reports_lost_events(caplog: pytest.LogCaptureFixture) -> None:
    sink = BrokerSink()
    sink.send(event(1))
    sink.close()
    assert "1 events were never sent" in caplog.text


def test_event_buffer_is_thread_safe() -> None:
    received: list[Any] = []
    buffer = EventBuffer(received.extend, interval=0.01, max_buffer=100_000, batch_size=50)

    def produce(offset: int) -> None:
        for n in range(2_000):
            buffer.put({"n": offset + n})

    threads = [threading.Thread(target=produce, args=(i * 10_000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.close()
    assert sorted(e["n"] for e in received) == sorted(i * 10_000 + n for i in range(4) for n in range(2_000))


# --- the jsonl sink -----------------------------------------------------------------------


def test_jsonl_sink_appends_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    path.parent.mkdir()
    path.write_text('{"type": "earlier"}\n')
    sink = JsonlSink(path, interval=10.0)
    sink.send(event(1))
    sink.send({**event(2, "task-failed"), "exception": "ValueError('é')", "odd": {1, 2}})
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0]) == {"type": "earlier"}
    assert json.loads(lines[1]) == event(1)
    second = json.loads(lines[2])
    assert second["exception"] == "ValueError('é')"
    assert second["odd"] == "{1, 2}"  # what JSON cannot carry is written as its repr


def test_jsonl_sink_flushes_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path, interval=0.05)
    sink.send(event(1))
    deadline = time.monotonic() + 2
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert json.loads(path.read_text()) == event(1)
    sink.close()


# --- the log sink -------------------------------------------------------------------------


def test_log_sink_logs_each_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="celeriac.events")
    sink = LogSink(logging.WARNING)
    sink.send({**event(1, "task-succeeded"), "runtime": 0.5})
    (record,) = caplog.records
    assert record.name == "celeriac.events"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "task-succeeded w@h uuid='t1' runtime=0.5"


def test_log_sink_below_the_logger_level_formats_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="celeriac.events")
    LogSink(logging.DEBUG).send(event(1))
    assert caplog.records == []


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown sink kafka"):
        EventsConfig(sinks=("broker", "kafka"))
    with pytest.raises(ValueError, match="unknown log level"):
        EventsConfig(log_level="LOUD")
    with pytest.raises(ValueError, match="must be > 0"):
        EventsConfig(batch_interval=0)
    assert EventsConfig(log_level="debug").level == logging.DEBUG
