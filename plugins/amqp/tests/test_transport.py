"""The transport against a real RabbitMQ: delivery, settlement, priorities, delays, dead letters."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import socket
import threading
import time
from typing import Any

import pika
import pika.exceptions
import pytest

from celeriac.plugin import Broadcaster
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Delivery
from celeriac.plugin import DirectReplies
from celeriac.plugin import Envelope
from celeriac.plugin import Transport
from celeriac_amqp import AmqpConfig
from celeriac_amqp import _wire as wire
from celeriac_amqp import make_transport
from celeriac_amqp._transport import AmqpTag
from celeriac_amqp.testing import delete_queues
from celeriac_amqp.testing import rabbitmqctl

from .conftest import make_config
from .conftest import wait_for

pytestmark = pytest.mark.integration


def env(body: bytes, **headers: Any) -> Envelope:
    return Envelope(body=body, content_type="application/json", headers=headers)


def fetch_all(transport: Any, queue: str, want: int, timeout: float = 5.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += transport.fetch([queue], want - len(got), 0.2)
    return got


def test_is_a_transport_and_broadcaster(transport: Any) -> None:
    assert isinstance(transport, Transport)
    assert isinstance(transport, Broadcaster)


def test_publish_fetch_ack_with_celery_mapping(transport: Any, queue_name: str) -> None:
    envelope = Envelope(
        body=b"[[2, 3], {}, {}]",
        content_type="application/json",
        headers={"id": "t1", "task": "proj.add", "timelimit": [1.5, None], "retries": 0, "eta": None},
        properties={"correlation_id": "t1", "reply_to": "replies", "delivery_mode": 2},
    )
    transport.publish(queue_name, [envelope])  # returns once confirmed
    assert transport.queue_length(queue_name) == 1
    [delivery] = fetch_all(transport, queue_name, 1)
    got = delivery.envelope
    assert got.body == envelope.body
    assert dict(got.headers) == dict(envelope.headers)
    assert got.properties == {"correlation_id": "t1", "reply_to": "replies", "delivery_mode": 2}
    assert delivery.queue == queue_name and delivery.delivery_count == 1
    transport.ack([delivery])
    transport.close()
    again = make_transport(transport_url(transport), make_config())
    try:
        assert again.fetch([queue_name], 10, 0.5) == []
    finally:
        again.close()


def transport_url(transport: Any) -> str:
    parameters = transport._link._parameters
    vhost = parameters.virtual_host.replace("/", "%2F")
    return f"amqp://guest:guest@{parameters.host}:{parameters.port}/{vhost}"


def test_out_of_order_batched_acks(transport: Any, queue_name: str) -> None:
    transport.publish(queue_name, [env(str(n).encode()) for n in range(6)])
    deliveries = fetch_all(transport, queue_name, 6)
    assert [d.envelope.body for d in deliveries] == [str(n).encode() for n in range(6)]
    transport.ack([deliveries[4], deliveries[0], deliveries[1], deliveries[2]])  # prefix 0-2 at once
    transport.reject([deliveries[3]], requeue=True)
    transport.ack([deliveries[5]])
    [back] = fetch_all(transport, queue_name, 1)
    assert back.envelope.body == b"3" and back.delivery_count == 2
    transport.ack([back])
    assert transport.fetch([queue_name], 10, 0.3) == []


def test_acknowledgements_from_many_threads_all_reach_rabbitmq_before_close(
    amqp_url: str, transport: Any, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acks are handed to the I/O thread without waiting, those of several callers in one
    ``basic.ack`` when they meet there; closing the transport sends what is still queued."""
    transport.publish(queue_name, [env(str(n).encode()) for n in range(301)])
    *deliveries, late = fetch_all(transport, queue_name, 301)
    assert len(deliveries) == 300
    chunks = [deliveries[n::6] for n in range(6)]  # interleaved: no chunk is a prefix
    threads = [threading.Thread(target=transport.ack, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    link = transport._link
    wait_for(lambda: not transport._acks and not link._calls, timeout=10)
    # The last one is still queued when close() comes: its wake-up is held back, so the I/O
    # thread is waiting on the socket and sees the close first.
    monkeypatch.setattr(link, "_wake", lambda: None)
    transport.ack([late])
    monkeypatch.undo()
    assert len(link._calls) == 1
    transport.close()
    assert_all_acknowledged(amqp_url, queue_name)


def assert_all_acknowledged(amqp_url: str, queue_name: str) -> None:
    """Nothing of the queue comes back to a new consumer: every message was acknowledged
    (what a closed connection held unacknowledged would be back in the queue)."""
    again = make_transport(amqp_url, make_config())
    try:
        assert again.fetch([queue_name], 500, 0.5) == []
    finally:
        again.close()


def close_connections(transport: Any, reason: str) -> None:
    """RabbitMQ closes every connection of the transport's vhost (a local server's rabbitmqctl)."""
    assert rabbitmqctl("close_all_connections", "-p", transport._link._parameters.virtual_host, reason)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl (a local RabbitMQ)")
def test_acks_still_go_out_after_a_reconnect_that_dropped_the_queued_ones(
    amqp_url: str, transport: Any, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused login while reconnecting fails the queued calls, the post that would have
    sent the pending acks among them: acks on the next connection must still be sent."""
    transport.publish(queue_name, [env(b"held")])
    [held] = fetch_all(transport, queue_name, 1)
    link = transport._link
    monkeypatch.setattr(link, "_wake", lambda: None)
    transport.ack([held])  # queued, not sent
    monkeypatch.undo()
    link._fail_pending(RuntimeError("refused"))  # what a ProbableAuthenticationError does
    close_connections(transport, "test: reconnect")
    [again] = fetch_all(transport, queue_name, 1, timeout=20)
    assert again.envelope.body == b"held" and again.redelivered
    transport.ack([again])
    transport.close()
    assert_all_acknowledged(amqp_url, queue_name)


def test_a_failure_that_stops_the_connection_thread_is_raised_and_loses_nothing(
    amqp_url: str, transport: Any, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a lost connection (those reconnect): the thread stops, says why once, lets go of
    the connection (RabbitMQ keeps the message) and every later call raises at once."""

    def broken(*args: Any) -> None:
        raise ValueError("a bug in delivery handling")

    monkeypatch.setattr(transport, "_on_message", broken)
    transport.publish(queue_name, [env(b"kept")])
    try:
        fetched = transport.fetch([queue_name], 1, 1.0)
    except RuntimeError as exc:  # the message came while the fetch's consumer was set up
        fetched = [] if "thread stopped: ValueError" in str(exc) else [exc]
    assert fetched == []
    wait_for(lambda: transport._link._died is not None, timeout=10)
    with pytest.raises(RuntimeError, match="thread stopped: ValueError"):
        transport.declare_queue(queue_name)
    lost = Delivery(envelope=env(b"x"), queue=queue_name, tag=AmqpTag(transport._link.generation, 1))
    for _ in range(2):  # the second finds an ack still waiting for a post that will never run
        with pytest.raises(RuntimeError, match="thread stopped: ValueError"):
            transport.ack([lost])
    other = make_transport(amqp_url, make_config())
    try:
        [kept] = fetch_all(other, queue_name, 1, timeout=10)
        assert kept.envelope.body == b"kept"
        other.ack([kept])
    finally:
        other.close()


def test_messages_larger_than_the_socket_takes_at_once_arrive_whole(
    transport: Any, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames go to the socket directly when nothing waits in pika's buffer: what a send does
    not take must follow, before anything written after it, on the same connection (a
    garbled stream would make RabbitMQ close it, and the window would publish again)."""
    caplog.set_level(logging.WARNING, logger="celeriac.amqp")
    transport.publish(queue_name, [env(b"connect")])  # the publisher's connection, opened
    publishing = transport._publisher._connection._transport._sock
    publishing.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # no send takes it all
    bodies = [secrets.token_bytes(n) for n in (6_000_000, 10, 3_000_000, 20, 7_000_000)]
    for body in bodies:  # one publish call each: a big one, then a small one behind it
        transport.publish(queue_name, [env(body)])
    transport.flush()
    first, *got = fetch_all(transport, queue_name, len(bodies) + 1, timeout=30)
    assert first.envelope.body == b"connect"
    assert [len(d.envelope.body) for d in got] == [len(b) for b in bodies]
    assert [d.envelope.body for d in got] == bodies
    transport.ack([first, *got])
    assert [r.getMessage() for r in caplog.records] == []


def test_unacked_messages_come_back_when_the_consumer_goes(amqp_url: str, queue_name: str) -> None:
    first = make_transport(amqp_url, make_config())
    first.publish(queue_name, [env(b"a"), env(b"b")])
    assert len(fetch_all(first, queue_name, 2)) == 2
    first.close()  # as a killed worker's connection: RabbitMQ requeues what it held
    second = make_transport(amqp_url, make_config())
    try:
        again = fetch_all(second, queue_name, 2)
        assert sorted(d.envelope.body for d in again) == [b"a", b"b"]
        assert all(d.redelivered for d in again)
        second.reject([again[0]], requeue=False)  # dropped for good
        second.ack([again[1]])
        assert second.queue_length(queue_name) == 0
    finally:
        second.close()


def test_priorities_are_honoured(amqp_url: str, queue_name: str) -> None:
    """Opt-in, as Celery's task_queue_max_priority: the queue is declared with x-max-priority."""
    transport = make_transport(amqp_url, make_config(max_priority=10))
    try:
        _priorities(transport, queue_name)
    finally:
        transport.close()


def _priorities(transport: Any, queue_name: str) -> None:
    transport.declare_queue(queue_name)
    transport.publish(queue_name, [env(b"low")], priority=1)
    transport.publish(queue_name, [env(b"none")])
    transport.publish(queue_name, [env(b"high")], priority=9)
    transport.publish(queue_name, [env(b"mid")], priority=5)
    transport.flush()  # all four queued before the first is consumed
    got = fetch_all(transport, queue_name, 4)
    assert [d.envelope.body for d in got] == [b"high", b"mid", b"low", b"none"]
    assert got[0].envelope.properties["priority"] == 9
    transport.ack(got)


def test_delayed_message_arrives_after_its_delay_not_before(transport: Any, queue_name: str) -> None:
    sent = time.monotonic()
    transport.publish(queue_name, [env(b"later")], delay=1.2)
    transport.publish(queue_name, [env(b"now")])
    [now] = fetch_all(transport, queue_name, 1)
    assert now.envelope.body == b"now"
    assert transport.fetch([queue_name], 10, 0.5) == []  # nothing held by the consumer meanwhile
    [later] = fetch_all(transport, queue_name, 1)
    assert later.envelope.body == b"later"
    assert time.monotonic() - sent >= 1.2
    assert "x-death" not in later.envelope.headers
    transport.ack([now, later])
    name, _ = wire.delay_queue(queue_name, 1200, transport.settings)
    delete_queues(transport_url(transport), [name])


def test_delay_buckets_round_up() -> None:
    assert wire.delay_bucket(1.2, 3) == 1200
    assert wire.delay_bucket(1.2345, 3) == 1240
    assert wire.delay_bucket(86400.5, 3) == 86_500_000
    assert wire.delay_bucket(0.0001, 3) == 1


def test_dead_letters_are_listed_and_requeued(transport: Any, queue_name: str) -> None:
    transport.publish(queue_name, [env(b"bad", id="x1"), env(b"worse", id="x2")])
    first, second = fetch_all(transport, queue_name, 2)
    transport.dead_letter(first, "cannot decode message: nope")
    transport.dead_letter(second, "unknown task")
    letters = transport.dead_letters(queue_name)
    assert [(d.envelope.body, d.reason) for d in letters] == [
        (b"bad", "cannot decode message: nope"),
        (b"worse", "unknown task"),
    ]
    assert letters[0].failed_at > time.time() - 60 and letters[0].queue == queue_name
    assert transport.dead_letters(queue_name) == letters  # listing takes nothing
    assert transport.queue_length(queue_name) == 0
    assert transport.requeue_dead_letter(letters[1].id) is True
    assert transport.requeue_dead_letter(letters[1].id) is False
    [back] = fetch_all(transport, queue_name, 1)
    assert back.envelope.body == b"worse" and dict(back.envelope.headers) == {"id": "x2"}
    transport.ack([back])
    assert [d.envelope.body for d in transport.dead_letters(queue_name)] == [b"bad"]


def test_purge_dead_letters_of_one_queue_or_all(amqp_url: str, transport: Any, queue_name: str) -> None:
    assert isinstance(transport, DeadLetterPurger)
    other = f"{queue_name}-other"
    try:
        for queue, count in ((queue_name, 3), (other, 2)):
            transport.publish(queue, [env(b"%d" % n) for n in range(count)])
            for delivery in fetch_all(transport, queue, count):
                transport.dead_letter(delivery, "boom")
        transport.publish(queue_name, [env(b"alive")])
        assert transport.purge_dead_letters(queue_name) == 3
        assert transport.purge_dead_letters(queue_name) == 0
        assert [d.queue for d in transport.dead_letters()] == [other, other]
        # None: the queues this process declared, as dead_letters() lists them.
        assert transport.purge_dead_letters() == 2
        assert transport.dead_letters() == []
        assert transport.purge_dead_letters(f"{queue_name}-never-used") == 0
        assert transport.queue_length(queue_name) == 1  # waiting messages are not dead letters
    finally:
        delete_queues(amqp_url, [other, f"{other}.dead"])


def test_purge_and_length(transport: Any, queue_name: str) -> None:
    assert transport.queue_length(queue_name) == 0  # unknown queue
    assert transport.purge(queue_name) == 0
    transport.publish(queue_name, [env(b"%d" % n) for n in range(5)])
    assert transport.queue_length(queue_name) == 5
    assert transport.purge(queue_name) == 5
    assert transport.queue_length(queue_name) == 0


def test_broadcast_reaches_every_subscriber(amqp_url: str, transport: Any) -> None:
    other = make_transport(amqp_url, make_config())
    try:
        for channel in ("celery.pidbox", "celeryev", "reply.celery.pidbox"):
            subscriptions = [transport.subscribe(channel), other.subscribe(channel)]
            transport.broadcast(channel, env(b"hello", clock=1))
            for subscription in subscriptions:
                [got] = subscription.get(5.0)
                assert got.body == b"hello"
                assert subscription.get(0.1) == []
                subscription.close()
    finally:
        other.close()


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl (a local RabbitMQ)")
def test_recovers_from_a_dropped_connection(transport: Any, queue_name: str) -> None:
    transport.publish(queue_name, [env(b"held")])
    [held] = fetch_all(transport, queue_name, 1)
    generation = transport._link.generation
    close_connections(transport, "test: connection dropped")
    # The held message comes back; its ack, for a connection now gone, is dropped safely.
    [again] = fetch_all(transport, queue_name, 1, timeout=20)
    assert again.envelope.body == b"held" and again.redelivered
    assert transport._link.generation > generation
    transport.ack([held])
    transport.ack([again])
    transport.publish(queue_name, [env(b"after")])
    [after] = fetch_all(transport, queue_name, 1)
    transport.ack([after])
    assert transport.queue_length(queue_name) == 0


def test_reads_the_float_headers_py_amqp_sends(transport: Any, queue_name: str) -> None:
    """Celery's client (py-amqp) writes floats as AMQP doubles; pika alone would truncate them."""
    amqp = pytest.importorskip("amqp", reason="py-amqp (Celery's client) sends the message")
    transport.declare_queue(queue_name)
    parameters = transport._link._parameters
    connection = amqp.Connection(
        f"{parameters.host}:{parameters.port}",
        userid="guest",
        password="guest",
        virtual_host=parameters.virtual_host,
    )
    connection.connect()
    try:
        channel = connection.channel()
        headers = {"id": "f1", "timelimit": [30.5, 29.25], "at": 1763699762.125, "n": 2**40, "flag": True}
        message = amqp.Message(b"[]", content_type="application/json", application_headers=headers)
        channel.basic_publish(message, exchange="", routing_key=queue_name)
    finally:
        connection.close()
    [delivery] = fetch_all(transport, queue_name, 1)
    assert dict(delivery.envelope.headers) == headers
    transport.ack([delivery])


def test_quorum_queues_count_deliveries(amqp_url: str, queue_name: str) -> None:
    transport = make_transport(amqp_url, make_config(queue_type="quorum"))
    try:
        transport.publish(queue_name, [env(b"q", id="q1")], delay=0.3)
        transport.publish(queue_name, [env(b"p", id="p1")])
        [first] = fetch_all(transport, queue_name, 1)
        assert first.envelope.body == b"p" and first.delivery_count == 1
        for expected in (2, 3):
            transport.reject([first], requeue=True)
            [first] = fetch_all(transport, queue_name, 1)
            assert first.envelope.body == b"p" and first.delivery_count == expected  # x-delivery-count
        transport.ack([first])
        [later] = fetch_all(transport, queue_name, 1, timeout=10)
        assert later.envelope.body == b"q" and later.delivery_count == 1
        transport.ack([later])
        assert transport.queue_length(queue_name) == 0
    finally:
        transport.close()
    probe = pika_channel(amqp_url)
    try:  # declared as a quorum queue: a classic redeclaration is refused
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-queue-type"):
            probe.queue_declare(queue_name, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        probe.connection.close()
    name, _ = wire.delay_queue(queue_name, 300, AmqpConfig())
    delete_queues(amqp_url, [name])


def test_queue_length_leaves_out_delayed_messages(transport: Any, queue_name: str) -> None:
    transport.publish(queue_name, [env(b"later")], delay=30)
    transport.publish(queue_name, [env(b"now")])
    assert transport.queue_length(queue_name) == 1
    assert transport.purge(queue_name) == 1
    name, _ = wire.delay_queue(queue_name, 30000, transport.settings)
    delete_queues(transport_url(transport), [name])


def pika_channel(url: str) -> Any:
    from celeriac_amqp.testing import connection_parameters

    return pika.BlockingConnection(connection_parameters(url)).channel()


# --- remote-control replies through the direct exchange, as kombu's pidbox sends them -----

REPLIES = "reply.celery.pidbox"


def _kombu_exchange(kombu: Any) -> Any:
    return kombu.Exchange(REPLIES, type="direct", durable=False, delivery_mode="transient")


def test_is_a_direct_replies_transport(transport: Any) -> None:
    assert isinstance(transport, DirectReplies)


def test_reply_queue_gets_what_kombu_publishes_to_the_direct_exchange(amqp_url: str, transport: Any) -> None:
    """A Celery worker's reply (declaring the exchange as kombu does: no PRECONDITION_FAILED)."""
    kombu = pytest.importorskip("kombu")
    oid = f"oid-{secrets.token_hex(6)}"
    replies = transport.reply_queue(REPLIES, oid)
    with kombu.Connection(amqp_url) as conn:
        producer = kombu.Producer(conn.default_channel)
        body = {"w@h": {"ok": "pong"}}
        producer.publish(
            body,
            exchange=_kombu_exchange(kombu),
            routing_key=oid,
            headers={"ticket": "t1"},
            declare=[_kombu_exchange(kombu)],
        )
        producer.publish(
            body, exchange=_kombu_exchange(kombu), routing_key="someone-else", headers={"ticket": "t2"}
        )
    [reply] = replies.get(5.0)
    assert json.loads(reply.body) == {"w@h": {"ok": "pong"}}
    assert reply.headers["ticket"] == "t1"
    assert replies.get(0.1) == []
    replies.close()
    with kombu.Connection(amqp_url) as conn, pytest.raises(conn.channel_errors):
        conn.default_channel.queue_declare(f"{oid}.{REPLIES}", passive=True)  # deleted


def test_send_reply_reaches_a_kombu_reply_queue(amqp_url: str, transport: Any) -> None:
    """A Celery client's reply queue, declared and bound by kombu as Celery's Mailbox does."""
    kombu = pytest.importorskip("kombu")
    oid = f"oid-{secrets.token_hex(6)}"
    queue = kombu.Queue(
        f"{oid}.{REPLIES}",
        exchange=_kombu_exchange(kombu),
        routing_key=oid,
        exclusive=True,
        auto_delete=True,
        expires=10.0,
        message_ttl=300.0,
    )
    with kombu.Connection(amqp_url) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        transport.send_reply(REPLIES, oid, env(b'{"w@h": {"ok": "pong"}}', ticket="t1", clock=3))
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            time.sleep(0.02)
        assert message is not None
        assert message.payload == {"w@h": {"ok": "pong"}}
        assert message.headers["ticket"] == "t1"
        bound.delete()


def test_a_message_delivered_while_its_consumer_starts_names_its_queue(
    amqp_url: str, transport: Any, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog bound to the queue under another routing key: the first deliveries come
    right behind Basic.ConsumeOk, and the connection hands them to ``_on_message`` while
    ``basic_consume`` is still returning, before ``_consumers`` knows the new tag. Their
    Delivery must still name the queue (it is where a hand-back, a retry or a dead letter
    goes), not the routing key they were published with."""
    import pika.channel

    from celeriac_amqp.testing import connection_parameters

    transport.declare_queue(queue_name)
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_bind(queue_name, "amq.direct", routing_key="not-the-queue-name")
        channel.basic_publish("amq.direct", "not-the-queue-name", b"routed")
        consume = pika.channel.Channel.basic_consume

        def consume_then_lag(self: Any, *args: Any, **kwargs: Any) -> Any:
            tag = consume(self, *args, **kwargs)
            # Basic.Consume is on the socket; once RabbitMQ has sent the backlog behind its
            # ConsumeOk (none left ready), both are read together when pika reads next.
            wait_for(
                lambda: channel.queue_declare(queue_name, passive=True).method.message_count == 0,
                timeout=10,
            )
            return tag

        monkeypatch.setattr(pika.channel.Channel, "basic_consume", consume_then_lag)
        [delivery] = fetch_all(transport, queue_name, 1)
        transport.ack([delivery])
    finally:
        monkeypatch.undo()
        connection.close()
    assert delivery.envelope.body == b"routed"
    assert delivery.queue == queue_name


def test_a_delivery_left_to_pika_is_not_overtaken_by_those_read_after_it(
    transport: Any, queue_name: str
) -> None:
    """A frame between a message's own frames (a heartbeat here; AMQP allows it, as it allows
    another channel's frames) makes the connection leave that message to pika, whose
    blocking adapter queues it for ``process_data_events``; the next message, read whole,
    is handed over at once. The consumer must still get them in the order they arrived
    (``_unacked`` is kept in that order, and a multiple ack of a prefix relies on it)."""
    import pika.frame
    import pika.spec

    from celeriac_amqp._properties import AmqpProperties

    transport.declare_queue(queue_name)
    assert transport.fetch([queue_name], 10, 0.1) == []  # consuming, nothing there
    [tag] = transport._consumers
    number = transport._link.consumer.channel_number
    properties = AmqpProperties(content_type="application/json", headers={})
    heartbeat = pika.frame.Heartbeat().marshal()

    def message(delivery_tag: int, body: bytes, *, between: bytes = b"") -> bytes:
        deliver = pika.spec.Basic.Deliver(tag, delivery_tag, False, "", queue_name)
        return b"".join(
            [
                pika.frame.Method(number, deliver).marshal(),
                between,
                pika.frame.Header(number, len(body), properties).marshal(),
                pika.frame.Body(number, body).marshal(),
            ]
        )

    def arrive(link: Any) -> None:
        impl = link.connection._impl
        assert impl._frame_buffer == b""  # at a frame boundary
        impl._on_data_available(message(1001, b"first", between=heartbeat) + message(1002, b"second"))

    transport._link.call(arrive)
    got = fetch_all(transport, queue_name, 2)
    assert [d.envelope.body for d in got] == [b"first", b"second"]


def test_a_consuming_channel_closed_by_rabbitmq_is_not_replaced_silently(
    transport: Any, queue_name: str
) -> None:
    """RabbitMQ closes the consuming channel (here: an ack of a tag it never delivered; in
    production also ``consumer_timeout``), and another call touches the consumer before
    the I/O thread's check between calls sees it. That call must not open a fresh channel
    with no consumer on it (the worker would consume nothing, silently): the connection is
    started over, which restores the consumers."""
    transport.publish(queue_name, [env(b"before")])
    [first] = fetch_all(transport, queue_name, 1)
    transport.ack([first])
    go = threading.Event()

    def close_the_consumer(link: Any) -> None:
        go.wait(10)
        channel = link.consumer
        channel.basic_ack(999_999)  # unknown to RabbitMQ: it closes the channel (406)
        deadline = time.monotonic() + 10
        while channel.is_open and time.monotonic() < deadline:
            link.connection.process_data_events(time_limit=0.05)

    transport._link.post(close_the_consumer)
    transport._link.post(lambda link: link.consumer)  # runs right after, in the same round
    go.set()
    transport._link.call(lambda link: None, 30)  # both ran (calls run in order)
    transport.publish(queue_name, [env(b"after")])
    [second] = fetch_all(transport, queue_name, 1, timeout=20)
    assert second.envelope.body == b"after"
    transport.ack([second])
