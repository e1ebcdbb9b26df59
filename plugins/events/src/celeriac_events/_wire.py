"""Events as broker messages, in the shapes Celery's dispatchers send and its receivers read.

Celery publishes every event on the ``celeryev`` exchange with the event type as routing
key (``task-succeeded`` → ``task.succeeded``), one JSON object per message, with the header
``hostname``. Its workers buffer the ``task`` group and send it as one JSON list under
``task.multi``; receivers (``EventReceiver``, Flower) accept both. Worker events always go
alone: Celery's gossip binds ``worker.#`` and reads one event per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from celeriac.plugin import Envelope
from celeriac_events._buffer import Event

#: The fan-out channel events travel on: Celery's event exchange.
EVENT_CHANNEL = "celeryev"
#: Events always travel as JSON, Celery's ``event_serializer`` default, whatever the task serializer.
CONTENT_TYPE = "application/json"
#: Groups whose events are never batched (Celery's gossip reads one worker event per message).
SINGLE_GROUPS = frozenset({"worker"})


def _stdlib_dumps(value: Any) -> bytes:
    # repr() for anything JSON cannot carry: a monitoring event must never fail to encode.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr).encode("utf-8")


def _make_dumps() -> Callable[[Any], bytes]:
    """orjson when installed (``celeriac-events[fast]``): encoding is most of an event's cost."""
    try:
        import orjson
    except ImportError:
        return _stdlib_dumps
    options = orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        try:
            return orjson.dumps(value, default=repr, option=options)
        except (TypeError, orjson.JSONEncodeError):  # e.g. integers past 64 bits
            return _stdlib_dumps(value)

    return dumps


dumps = _make_dumps()


def group_of(event: Event) -> str:
    """Celery's event group: the type up to the first dash (``task``, ``worker``)."""
    return str(event.get("type", "")).partition("-")[0]


def _envelope(body: Any, routing_key: str, hostname: Any) -> Envelope:
    return Envelope(
        body=dumps(body),
        content_type=CONTENT_TYPE,
        headers={"hostname": hostname} if hostname else {},
        # kombu's place for the routing key; transports map it onto their fan-out (AMQP
        # topic routing key, Redis channel suffix).
        properties={"delivery_info": {"exchange": EVENT_CHANNEL, "routing_key": routing_key}},
    )


def encode_event(event: Event) -> Envelope:
    """One event as Celery sends it unbuffered: routing key ``<type with dots>``, an object body."""
    return _envelope(dict(event), str(event.get("type", "")).replace("-", "."), event.get("hostname"))


def encode_batch(events: Sequence[Event]) -> Envelope:
    """Events of one group as Celery's buffered dispatcher sends them: a list under ``<group>.multi``."""
    group = group_of(events[0]) if events else "task"
    hostname = events[0].get("hostname") if events else None
    return _envelope(list(events), f"{group}.multi", hostname)


def encode_events(events: Sequence[Event]) -> list[Envelope]:
    """The messages for a flush, in order: each run of one group becomes one ``<group>.multi``
    list, a run of one event and every worker event a message of its own."""
    envelopes: list[Envelope] = []
    run_start, run_group = 0, None
    # On the sink's thread, but under the GIL the worker pays for it too: one pass, no calls per event.
    for index, event in enumerate(events):
        type_ = event.get("type")
        group = type_.partition("-")[0] if isinstance(type_, str) else ""
        if group == run_group:
            continue
        _close_run(envelopes, events[run_start:index])
        run_start, run_group = index, group
    _close_run(envelopes, events[run_start:])
    return envelopes


def _close_run(envelopes: list[Envelope], run: Sequence[Event]) -> None:
    """One run of a group: a list, or one message per event (worker events, a run of one)."""
    if len(run) == 1 or (run and group_of(run[0]) in SINGLE_GROUPS):
        envelopes.extend(encode_event(event) for event in run)
    elif run:
        envelopes.append(encode_batch(run))
