"""A process forked from one connected to RabbitMQ (a prefork pool's child started by fork)
uses connections of its own: the parent's I/O threads did not come along, and its sockets
are the parent's to use."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import Envelope
from celeriac.testing import in_forked_child
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_amqp import make_result_store

from .test_rpc import record
from .test_rpc import rpc_app
from .test_rpc import rpc_config

pytestmark = pytest.mark.integration


def envelope(body: bytes) -> Envelope:
    return Envelope(body=body, content_type="application/json", headers={})


def test_a_forked_child_publishes_on_a_connection_of_its_own(transport: Any, queue_name: str) -> None:
    transport.publish(queue_name, [envelope(b"1")])  # the parent's threads and connections run

    def child() -> None:
        transport.publish(queue_name, [envelope(b"2")])
        transport.close()  # returns once RabbitMQ confirmed it

    assert in_forked_child(child) == 0
    transport.publish(queue_name, [envelope(b"3")])  # the parent's connection is untouched
    wait_for(lambda: transport.queue_length(queue_name) == 3, 10, "three messages queued")
    bodies = sorted(d.envelope.body for d in transport.fetch([queue_name], 3, 5.0))
    assert bodies == [b"1", b"2", b"3"]


def test_a_forked_childs_rpc_store_replies_and_receives_on_its_own(amqp_url: str) -> None:
    client = make_result_store("rpc://", rpc_config(amqp_url))
    worker = make_result_store("rpc://", rpc_config(amqp_url))
    try:
        queue = client.reply_queue()
        worker.store(record("t1", states.SUCCESS, queue, 1))  # the parent's worker store connected
        assert client.wait("t1", states.READY_STATES, timeout=10) is not None

        def child() -> None:
            worker.store(record("t2", states.SUCCESS, queue, 2))  # through a connection of its own
            own = client.reply_queue()  # and a reply queue of its own, not the parent's
            assert own != queue and client.get("t1") is None
            worker.store(record("t3", states.SUCCESS, own, 3))
            assert client.wait("t3", states.READY_STATES, timeout=10) is not None
            worker.close()
            client.close()

        assert in_forked_child(child) == 0
        assert client.wait("t2", states.READY_STATES, timeout=10) is not None
        assert client.get("t3") is None  # the child's reply went to the child
    finally:
        client.close()
        worker.close()


def test_tasks_in_children_forked_from_a_worker_send_tasks(
    amqp_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefork pool forks its children from the worker when the app has no import path
    (an app made in the process, as here): a child's task publishes a task of its own."""
    monkeypatch.setenv("CELERIAC_PLUGINS__ENABLE", '["amqp", "json", "prefork"]')
    worker_app = Celeriac("w", broker=amqp_url, result_store="rpc://", default_queue=queue_name, config=False)
    client = rpc_app(amqp_url, queue_name, "c")

    @worker_app.task(name="t.double")
    def double(n: int) -> int:
        return 2 * n

    @worker_app.task(name="t.spawn")
    def spawn(n: int) -> int:
        worker_app.send_task("t.double", (n,), ignore_result=True)
        return n

    try:
        with worker_thread(worker_app, pool="prefork", concurrency=2):
            assert [client.send_task("t.spawn", (n,)).get(timeout=20) for n in range(3)] == [0, 1, 2]
            wait_for(lambda: client.transport.queue_length(queue_name) == 0, 20, "the sent tasks ran")
    finally:
        client.close()
        worker_app.close()
