"""Events as messages: Celery's routing keys and body shapes."""

from __future__ import annotations

import json
from typing import Any

from celeriac_events import decode_events
from celeriac_events import encode_event
from celeriac_events import encode_events


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "hostname": "w@h", "timestamp": 1.0, **fields}


def shape(envelopes: list[Any]) -> list[tuple[str, str]]:
    return [
        (e.properties["delivery_info"]["routing_key"], type(json.loads(e.body)).__name__) for e in envelopes
    ]


def test_one_event_is_an_object_under_its_type_with_dots() -> None:
    envelope = encode_event(event("task-succeeded", uuid="1"))
    assert envelope.properties["delivery_info"] == {"exchange": "celeryev", "routing_key": "task.succeeded"}
    assert envelope.headers == {"hostname": "w@h"}
    assert envelope.content_type == "application/json"
    assert json.loads(envelope.body)["uuid"] == "1"


def test_task_runs_become_task_multi_lists_and_worker_events_go_alone() -> None:
    flush = [
        event("worker-online"),
        event("task-received", uuid="1"),
        event("task-started", uuid="1"),
        event("worker-heartbeat"),
        event("task-succeeded", uuid="1"),
        event("task-received", uuid="2"),
        event("task-received", uuid="3"),
        event("worker-heartbeat"),
        event("worker-offline"),
    ]
    envelopes = encode_events(flush)
    assert shape(envelopes) == [
        ("worker.online", "dict"),
        ("task.multi", "list"),
        ("worker.heartbeat", "dict"),
        ("task.multi", "list"),
        ("worker.heartbeat", "dict"),
        ("worker.offline", "dict"),
    ]
    # Nothing lost, nothing reordered.
    assert [e for envelope in envelopes for e in decode_events(envelope)] == flush


def test_a_lone_task_event_is_sent_as_celery_sends_it_unbuffered() -> None:
    assert shape(encode_events([event("task-sent", uuid="1")])) == [("task.sent", "dict")]
    assert shape(encode_events([event("task-progress"), event("other-thing")])) == [
        ("task.progress", "dict"),
        ("other.thing", "dict"),
    ]
