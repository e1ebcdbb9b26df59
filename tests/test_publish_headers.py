"""The before-publish hook may add message headers: they reach the wire on every publish path.

The contract (``celeriac_before_publish`` in hookspecs.py) that celeriac-opentelemetry's
``traceparent`` relies on: ``message.extra_headers`` is a dict the message is encoded from
after the hook ran; a key of the protocol's own is not overridden.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import signature
from celeriac import testing
from celeriac._client.app import Celeriac
from celeriac._client.canvas import chain
from celeriac._client.canvas import group
from celeriac._client.task import TaskCall
from celeriac._contract.hookspecs import hookimpl
from celeriac._model.message import TaskMessage
from celeriac.testing import worker_thread


class Stamp:
    """Numbers every publish in a header of its own, and tries to forge the task id."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)

    @hookimpl
    def celeriac_before_publish(self, message: TaskMessage, queue: str) -> None:
        headers = message.extra_headers
        assert isinstance(headers, dict), type(headers)
        headers["x-stamp"] = f"{message.task}#{next(self.counter)}"
        headers["id"] = "forged"


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celeriac]:
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    made = Celeriac("stamped", broker=broker, plugins=[testing, Stamp()], env={}, config=False)
    yield made
    made.close()


def _on_the_wire(app: Celeriac, count: int) -> list[dict[str, Any]]:
    deliveries = app.transport.fetch(["celery"], count, 5.0)
    app.transport.ack(deliveries)
    return [dict(delivery.envelope.headers) for delivery in deliveries]


def test_headers_added_by_the_hook_reach_the_wire(app: Celeriac) -> None:
    sent = [
        app.send_task("proj.one", (1,)),
        app.send_task("proj.two", (2,), headers={"x-own": "kept"}),
    ]
    wire = _on_the_wire(app, 2)
    assert [h["x-stamp"] for h in wire] == ["proj.one#1", "proj.two#2"]
    assert [h["id"] for h in wire] == [result.id for result in sent]  # the protocol's keys win
    assert wire[1]["x-own"] == "kept"


def test_a_group_sent_in_one_batch_carries_them(app: Celeriac) -> None:
    group(signature("proj.add", (i, i)) for i in range(3)).apply_async(app=app)
    wire = _on_the_wire(app, 3)
    assert sorted(h["x-stamp"] for h in wire) == ["proj.add#1", "proj.add#2", "proj.add#3"]


def test_a_delayed_message_carries_them(app: Celeriac) -> None:
    app.send_task("proj.later", countdown=0.2)
    (headers,) = _on_the_wire(app, 1)
    assert headers["x-stamp"] == "proj.later#1"


def test_the_worker_receives_them_on_chain_steps_and_retries(app: Celeriac) -> None:
    seen: list[tuple[str, Any]] = []

    @app.task(bind=True, max_retries=1)
    def flaky(call: TaskCall, x: int) -> int:
        seen.append(("flaky", call.request.message.extra_headers.get("x-stamp")))
        if call.request.retries == 0:
            call.retry(countdown=0)
        return x

    @app.task(bind=True)
    def double(call: TaskCall, x: int) -> int:
        seen.append(("double", call.request.message.extra_headers.get("x-stamp")))
        return 2 * x

    with worker_thread(app):
        assert chain(flaky.s(21), double.s()).apply_async().get(timeout=10) == 42
    # The first publish, its retry (stamped again, not left with the first stamp), the next step.
    assert seen == [
        ("flaky", f"{flaky.name}#1"),
        ("flaky", f"{flaky.name}#2"),
        ("double", f"{double.name}#3"),
    ]
