"""The task message against the exact layout Celery 5.7 puts on the wire, and protocol 1."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import ContentDisallowedError
from celeriac import MessageError
from celeriac.plugin import Envelope
from celeriac.plugin import TaskMessage
from celeriac.plugin import from_kombu
from celeriac.plugin import to_kombu

# Captured from celery 5.7.0 / kombu 5.7.0: add.apply_async((2, 3), countdown=10, priority=5)
# as LPUSHed to Redis (ids shortened to whole UUIDs here, everything else verbatim).
CELERY_CAPTURE: dict[str, Any] = {
    "body": (
        "W1syLCAzXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwg"
        "ImNob3JkIjogbnVsbH1d"
    ),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    "headers": {
        "lang": "py",
        "task": "proj.add",
        "id": "f2dd30e9-0000-4000-8000-000000000001",
        "shadow": None,
        "eta": "2026-11-21T04:36:02.656330+00:00",
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": "f2dd30e9-0000-4000-8000-000000000001",
        "parent_id": None,
        "argsrepr": "(2, 3)",
        "kwargsrepr": "{}",
        "origin": "gen7599@vm",
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    },
    "properties": {
        "correlation_id": "f2dd30e9-0000-4000-8000-000000000001",
        "reply_to": "8919486f-0000-4000-8000-000000000002",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": "celery"},
        "priority": 5,
        "body_encoding": "base64",
        "delivery_tag": "15fb30b4-0000-4000-8000-000000000003",
    },
}


@pytest.fixture
def app() -> Celeriac:
    return Celeriac(broker="memory://", env={}, config=False)


def test_celery_capture_decodes_to_the_task(app: Celeriac) -> None:
    message = app.codec.decode_task(from_kombu(CELERY_CAPTURE))
    assert message.task == "proj.add"
    assert message.args == (2, 3)
    assert message.kwargs == {}
    assert message.eta == dt.datetime(2026, 11, 21, 4, 36, 2, 656330, tzinfo=dt.UTC)
    assert message.priority == 5
    assert message.reply_to == "8919486f-0000-4000-8000-000000000002"
    assert message.origin == "gen7599@vm"


def test_celery_capture_round_trips_field_for_field(app: Celeriac) -> None:
    message = app.codec.decode_task(from_kombu(CELERY_CAPTURE))
    again = to_kombu(app.codec.encode_task(message), routing_key="celery")
    assert list(again["headers"]) == list(CELERY_CAPTURE["headers"])  # same keys, same order
    assert again["headers"] == CELERY_CAPTURE["headers"]
    assert json.loads(base64.b64decode(again["body"])) == json.loads(base64.b64decode(CELERY_CAPTURE["body"]))
    assert again["content-type"] == "application/json"
    assert again["content-encoding"] == "utf-8"
    for key in ("correlation_id", "reply_to", "delivery_mode", "priority", "body_encoding", "delivery_info"):
        assert again["properties"][key] == CELERY_CAPTURE["properties"][key], key


def test_our_messages_have_celery_header_layout(app: Celeriac) -> None:
    message = TaskMessage(id="i", task="proj.add", args=(1,), kwargs={"y": 2}, origin="me")
    envelope = app.codec.encode_task(message)
    assert list(envelope.headers) == list(CELERY_CAPTURE["headers"])
    assert envelope.headers["root_id"] == "i"
    assert envelope.headers["argsrepr"] == "(1,)"
    assert envelope.headers["kwargsrepr"] == "{'y': 2}"
    assert json.loads(envelope.body) == [
        [1],
        {"y": 2},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
    assert envelope.properties["correlation_id"] == "i"


def test_custom_headers_survive(app: Celeriac) -> None:
    message = TaskMessage(id="i", task="t", extra_headers={"tenant": "acme"})
    decoded = app.codec.decode_task(app.codec.encode_task(message))
    assert decoded.extra_headers == {"tenant": "acme"}


def test_protocol_1_message_is_accepted(app: Celeriac) -> None:
    body = {
        "task": "proj.add",
        "id": "abc",
        "args": [4, 5],
        "kwargs": {"z": 1},
        "retries": 2,
        "eta": "2026-01-01T00:00:00",
        "expires": None,
        "utc": True,
        "callbacks": None,
        "errbacks": None,
        "taskset": None,
        "chord": None,
        "timelimit": [30, 25],
    }
    envelope = Envelope(
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={},
        properties={"correlation_id": "abc"},
    )
    message = app.codec.decode_task(envelope)
    assert (message.task, message.id, message.args, message.kwargs) == ("proj.add", "abc", (4, 5), {"z": 1})
    assert message.retries == 2
    assert message.timelimit == (30, 25)
    assert message.eta == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # naive means UTC


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({"task": "t", "id": "i"}, b"not json", "invalid JSON"),
        ({"task": "t", "id": "i"}, b'{"a": 1}', "must be \\[args, kwargs, embed\\]"),
        ({"task": "t", "id": "i"}, b'["x", {}, {}]', "args must be a list"),
        ({"task": "t"}, b"[[], {}, {}]", "message has no 'id' header"),
        ({"task": "t", "id": 12345}, b"[[], {}, {}]", "header 'id' must be a string, got int 12345"),
        ({"task": "t", "id": ""}, b"[[], {}, {}]", "header 'id' is empty"),
        (
            {},
            b"[[1], {}, {}]",
            "not a task message: it has no headers, and its body is not a protocol 1 task",
        ),
        ({"x": 1}, b'{"a": 1}', "it has no 'task' header \\(headers: list \\['x'\\]\\)"),
        ({}, b'{"task": "t", "id": 7}', "field 'id' must be a string, got int 7"),
        ({"task": "t", "id": "i", "eta": "soon"}, b"[[], {}, {}]", "not an ISO-8601 time"),
        ({}, b"[1, 2]", "not a task message: it has no headers"),
    ],
)
def test_malformed_messages_name_the_problem(
    app: Celeriac, headers: dict[str, Any], body: bytes, match: str
) -> None:
    envelope = Envelope(body=body, content_type="application/json", headers=headers)
    with pytest.raises(MessageError, match=match):
        app.codec.decode_task(envelope)


def test_refused_content_type(app: Celeriac) -> None:
    envelope = Envelope(
        body=b"\x80\x04", content_type="application/x-python-serialize", headers={"task": "t", "id": "i"}
    )
    with pytest.raises(ContentDisallowedError, match="refused content type 'application/x-python-serialize'"):
        app.codec.decode_task(envelope)


def test_bad_base64_in_kombu_envelope() -> None:
    with pytest.raises(MessageError, match="not valid base64"):
        from_kombu({"body": "***", "properties": {"body_encoding": "base64"}})
