"""Workers on SQS (moto's server): tasks, countdowns, retries, bad input, remote control, errors."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from celeriac import states
from celeriac.plugin import Broadcaster
from celeriac.plugin import Envelope
from celeriac.testing import worker_thread
from celeriac_sqs import SqsError
from celeriac_sqs.testing import moto_server

from .conftest import MakeApp

pytestmark = [pytest.mark.integration]


def test_tasks_countdowns_retries_and_an_unregistered_task(make_app: MakeApp) -> None:
    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(bind=True, max_retries=3)
    def flaky(call: Any) -> int:
        if call.request.retries < 2:
            raise call.retry(countdown=1)
        return int(call.request.retries)

    with worker_thread(app, concurrency=4):
        results = [add.delay(n, n) for n in range(30)]
        assert [r.get(timeout=20) for r in results] == [2 * n for n in range(30)]
        sent = time.monotonic()
        later = add.apply_async((1, 1), countdown=2)
        assert later.get(timeout=20) == 2
        assert time.monotonic() - sent >= 2.0
        assert flaky.delay().get(timeout=20) == 2
        ghost = app.send_task("nobody.knows")
        with pytest.raises(Exception, match="unregistered task"):
            ghost.get(timeout=20)
    [letter] = app.transport.dead_letters()
    assert "unregistered task 'nobody.knows'" in letter.reason
    assert ghost.state == states.FAILURE


def test_poison_message_is_dead_lettered_after_max_deliveries(make_app: MakeApp) -> None:
    app = make_app(visibility_timeout=1.0)
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": "tests.crash", "id": task_id, "root_id": task_id}
    app.transport.publish(
        "celery", [Envelope(body=b"[[], {}, {}]", content_type="application/json", headers=headers)]
    )
    # Delivered and never acknowledged, as if each delivery killed its worker.
    for _ in range(3):
        deadline = time.monotonic() + 10
        while not app.transport.fetch(["celery"], 1, 1.0):
            assert time.monotonic() < deadline
    with worker_thread(make_app(worker={"max_deliveries": 2}), concurrency=1) as worker:
        deadline = time.monotonic() + 15
        while not worker.app.transport.dead_letters("celery"):
            assert time.monotonic() < deadline, "not dead-lettered"
    [letter] = app.transport.dead_letters("celery")
    assert "delivered 4 times" in letter.reason and "max_deliveries = 2" in letter.reason


def test_remote_control_over_sns(make_app: MakeApp) -> None:
    app = make_app(sqs={"broadcast": True})
    assert isinstance(app.transport, Broadcaster)
    assert not isinstance(make_app().transport, Broadcaster)  # SNS is off by default
    with worker_thread(app, concurrency=1) as worker:
        deadline = time.monotonic() + 20
        replies: list[dict[str, Any]] = []
        while not replies and time.monotonic() < deadline:  # until its subscription exists
            replies = app.control.ping(timeout=2.0, limit=1)
        assert replies == [{worker.hostname: {"ok": "pong"}}]


def test_broadcast_reaches_every_subscriber_and_close_deletes_its_queue(
    make_app: MakeApp, sqs: Any, prefix: str
) -> None:
    transport: Any = make_app(sqs={"broadcast": True}).transport
    first, second = transport.subscribe("celery.pidbox"), transport.subscribe("celery.pidbox")
    transport.broadcast(
        "celery.pidbox", Envelope(body=b'{"method": "ping"}', content_type="application/json")
    )
    assert [e.body for e in first.get(5)] == [b'{"method": "ping"}']
    assert [e.body for e in second.get(5)] == [b'{"method": "ping"}']
    first.close()
    second.close()
    names = [u.rsplit("/", 1)[-1] for u in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])]
    assert not [n for n in names if "celeriac-fanout" in n]


def test_unreachable_endpoint_is_named(make_app: MakeApp) -> None:
    from celeriac.testing import free_port

    port = free_port()
    app = make_app(
        sqs={"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1, "connect_timeout": 1.0}
    )
    with pytest.raises(SqsError, match=rf"http://127.0.0.1:{port} is unreachable while looking up queue"):
        app.transport.publish("celery", [Envelope(body=b"[]", content_type="application/json")])


def test_refused_credentials_are_named(
    tmp_path: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with moto_server(tmp_path, authenticate=True) as url:
        app = make_app(sqs={"endpoint_url": url, "max_attempts": 1})
        with pytest.raises(SqsError, match=rf"{url} refused the credentials while looking up queue") as info:
            app.transport.declare_queue("celery")
    assert "not-the-secret" not in str(info.value)
