"""The kombu layout against a real Redis, with kombu itself on the other side where it matters."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from celeriac.plugin import Broadcaster
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Delivery
from celeriac.plugin import DirectReplies
from celeriac.plugin import Envelope
from celeriac.plugin import Transport
from celeriac_redis._kombu import KombuRedisTransport

from .conftest import make_config


def _envelope(body: str, **headers: object) -> Envelope:
    return Envelope(body=body.encode(), content_type="application/json", headers=headers)


def _bodies(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.body.decode() for d in deliveries]


def _config(prefix: str, **settings: object) -> object:
    return make_config(prefix, layout="kombu", kombu_global_keyprefix=prefix, **settings)


@pytest.fixture
def transport(redis_url: str, prefix: str) -> Iterator[KombuRedisTransport]:
    transport = KombuRedisTransport(redis_url, _config(prefix))  # type: ignore[arg-type]
    yield transport
    transport.close()


@pytest.fixture
def short_lease(redis_url: str, prefix: str) -> Iterator[KombuRedisTransport]:
    config = _config(prefix, visibility_timeout=0.3, reclaim_interval=0.0)
    transport = KombuRedisTransport(redis_url, config)  # type: ignore[arg-type]
    yield transport
    transport.close()


def test_is_a_transport_and_a_broadcaster(transport: KombuRedisTransport) -> None:
    assert isinstance(transport, Transport)
    assert isinstance(transport, Broadcaster)


def test_publish_writes_kombus_envelope_and_keys(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    transport.publish("celery", [_envelope("[[2, 3], {}, {}]", task="proj.add", id="t1")], priority=5)
    [raw] = redis_client.lrange(f"{prefix}celery\x06\x163", 0, -1)
    message = json.loads(raw)
    assert base64.b64decode(message["body"]) == b"[[2, 3], {}, {}]"
    assert message["content-type"] == "application/json"
    assert message["headers"] == {"task": "proj.add", "id": "t1"}
    properties = message["properties"]
    assert properties["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert (properties["body_encoding"], properties["priority"]) == ("base64", 5)
    assert len(properties["delivery_tag"]) == 36


def test_delivery_tags_are_distinct_version_4_uuids(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    """Tags key kombu's unacked hash, which every producer shares: they must never repeat.
    They come from a buffer of random bytes (TaskIds), a batch at a time and one at a time."""
    transport.publish("celery", [_envelope(str(n)) for n in range(300)])
    for n in range(300):
        transport.publish("celery", [_envelope(str(n))])
    queued = redis_client.lrange(f"{prefix}celery", 0, -1)
    tags = [json.loads(raw)["properties"]["delivery_tag"] for raw in queued]
    assert len(set(tags)) == 600
    assert {uuid.UUID(tag).version for tag in tags} == {4}
    assert all(str(uuid.UUID(tag)) == tag for tag in tags)


def test_fetch_records_unacked_like_kombu_and_ack_clears(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    transport.publish("celery", [_envelope("a"), _envelope("b")])
    deliveries = transport.fetch(["celery"], limit=5, timeout=0)
    assert _bodies(deliveries) == ["a", "b"]  # FIFO: LPUSH, then popped from the right
    tag = deliveries[0].tag.tag
    message, exchange, routing_key = json.loads(redis_client.hget(f"{prefix}unacked", tag))
    assert (message["properties"]["delivery_tag"], exchange, routing_key) == (tag, "", "celery")
    assert abs(redis_client.zscore(f"{prefix}unacked_index", tag) - time.time()) < 5
    transport.ack(deliveries)
    assert redis_client.hlen(f"{prefix}unacked") == 0
    assert redis_client.zcard(f"{prefix}unacked_index") == 0


def test_priorities_follow_kombu_lower_first(transport: KombuRedisTransport) -> None:
    for body, priority in [("p9", 9), ("p0", 0), ("p7", 7), ("p3", 3)]:
        transport.publish("celery", [_envelope(body)], priority=priority)
    assert _bodies(transport.fetch(["celery"], limit=10, timeout=0)) == ["p0", "p3", "p7", "p9"]


def test_reject_requeues_marked_redelivered_with_count(transport: KombuRedisTransport) -> None:
    transport.publish("celery", [_envelope("a")])
    [first] = transport.fetch(["celery"], limit=1, timeout=0)
    transport.reject([first], requeue=True)
    [again] = transport.fetch(["celery"], limit=1, timeout=0)
    assert (again.envelope.body, again.delivery_count) == (b"a", 2)
    assert again.envelope.headers["redelivered"] is True
    transport.reject([again], requeue=False)
    assert transport.queue_length("celery") == 0


def test_unacked_message_of_a_dead_worker_is_restored(short_lease: KombuRedisTransport) -> None:
    short_lease.publish("celery", [_envelope("x")])
    [first] = short_lease.fetch(["celery"], limit=1, timeout=0)
    assert short_lease.fetch(["celery"], limit=1, timeout=0.1) == []
    time.sleep(0.35)
    [second] = short_lease.fetch(["celery"], limit=1, timeout=1)
    assert (second.envelope.body, second.delivery_count) == (b"x", 2)
    short_lease.ack([first])  # a stale ack removes nothing that was restored
    short_lease.ack([second])


def test_extend_keeps_the_sweep_away(short_lease: KombuRedisTransport) -> None:
    short_lease.publish("celery", [_envelope("x")])
    deliveries = short_lease.fetch(["celery"], limit=1, timeout=0)
    for _ in range(4):
        time.sleep(0.15)
        short_lease.extend(deliveries)
        assert short_lease.fetch(["celery"], limit=1, timeout=0) == []
    short_lease.ack(deliveries)


def test_eta_message_is_parked_in_redis_until_due(transport: KombuRedisTransport) -> None:
    eta = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.2)).isoformat()
    transport.publish("celery", [_envelope("later", eta=eta)], delay=1.2)  # pushed at once, as Celery does
    assert transport.fetch(["celery"], limit=1, timeout=0.2) == []  # parked, not handed out
    assert transport.queue_length("celery") == 1
    started = time.monotonic()
    [delivery] = transport.fetch(["celery"], limit=1, timeout=3)
    assert 0.5 < time.monotonic() - started < 2.0
    assert delivery.delivery_count == 1


def test_delay_without_eta_header_waits_in_the_delayed_set(transport: KombuRedisTransport) -> None:
    transport.publish("celery", [_envelope("later")], delay=0.3)
    assert transport.fetch(["celery"], limit=1, timeout=0) == []
    assert _bodies(transport.fetch(["celery"], limit=1, timeout=2)) == ["later"]


def test_dead_letters_and_requeue(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    transport.publish("celery", [_envelope("poison", id="p")], priority=4)
    [delivery] = transport.fetch(["celery"], limit=1, timeout=0)
    transport.dead_letter(delivery, "boom")
    assert redis_client.hlen(f"{prefix}unacked") == 0
    [dead] = transport.dead_letters()
    assert (dead.queue, dead.reason, dead.envelope.body) == ("celery", "boom", b"poison")
    assert transport.requeue_dead_letter(dead.id) is True
    assert transport.requeue_dead_letter(dead.id) is False
    assert transport.requeue_dead_letter("celery@bad") is False
    [again] = transport.fetch(["celery"], limit=1, timeout=0)
    assert (again.envelope.body, again.delivery_count) == (b"poison", 1)


def test_purge_dead_letters_of_one_queue_or_all(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    assert isinstance(transport, DeadLetterPurger)
    for queue, count in (("celery", 3), ("other", 2)):
        transport.publish(queue, [_envelope(f"{queue}{i}") for i in range(count)])
        for delivery in transport.fetch([queue], limit=count, timeout=0):
            transport.dead_letter(delivery, "boom")
    transport.publish("celery", [_envelope("alive")])
    assert transport.purge_dead_letters("celery") == 3
    assert transport.purge_dead_letters("celery") == 0
    assert [d.queue for d in transport.dead_letters()] == ["other", "other"]
    assert transport.purge_dead_letters() == 2
    assert transport.dead_letters() == []
    assert transport.purge_dead_letters("never-used") == 0
    assert _bodies(transport.fetch(["celery"], limit=5, timeout=0)) == ["alive"]


def test_garbage_in_a_list_is_dead_lettered(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    redis_client.lpush(f"{prefix}celery", b"not json")
    transport.publish("celery", [_envelope("fine")])
    assert _bodies(transport.fetch(["celery"], limit=5, timeout=0)) == ["fine"]
    [dead] = transport.dead_letters(queue="celery")
    assert "not a kombu message" in dead.reason
    assert dead.envelope.body == b"not json"


def test_purge_and_length(transport: KombuRedisTransport) -> None:
    transport.publish("celery", [_envelope(str(n)) for n in range(3)], priority=6)
    transport.publish("celery", [_envelope("d")], delay=30)
    assert transport.queue_length("celery") == 4
    assert transport.purge("celery") == 4
    assert transport.queue_length("celery") == 0


def test_kombu_itself_reads_ours_and_we_read_kombus(redis_url: str, prefix: str) -> None:
    kombu = pytest.importorskip("kombu")
    ours = KombuRedisTransport(redis_url, _config(prefix))  # type: ignore[arg-type]
    options = {"global_keyprefix": prefix}
    with kombu.Connection(redis_url, transport_options=options) as conn:
        queue = conn.SimpleQueue("shared", serializer="json")
        queue.put({"from": "kombu"}, priority=0)
        [delivery] = ours.fetch(["shared"], limit=1, timeout=1)
        assert json.loads(delivery.envelope.body) == {"from": "kombu"}
        ours.ack([delivery])
        ours.publish("shared", [Envelope(body=b'{"from": "celeriac"}', content_type="application/json")])
        message = queue.get(timeout=2)
        assert message.payload == {"from": "celeriac"}
        message.ack()
        queue.close()
    ours.close()


def test_kombus_sweep_restores_ours(redis_url: str, prefix: str) -> None:
    kombu = pytest.importorskip("kombu")
    ours = KombuRedisTransport(redis_url, _config(prefix))  # type: ignore[arg-type]
    ours.publish("shared", [_envelope("held")])
    [held] = ours.fetch(["shared"], limit=1, timeout=0)  # then "dies" holding it
    options = {"global_keyprefix": prefix, "visibility_timeout": 0.1}
    time.sleep(0.2)
    with kombu.Connection(redis_url, transport_options=options) as conn:
        conn.default_channel.qos.restore_visible(interval=1)
    [again] = ours.fetch(["shared"], limit=1, timeout=1)
    assert (again.envelope.body, again.delivery_count) == (b"held", 2)
    ours.ack([again])
    ours.ack([held])
    ours.close()


def test_broadcast_on_kombus_fanout_channel(
    transport: KombuRedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    subscription = transport.subscribe("celery.pidbox")
    listener = redis_client.pubsub()
    listener.subscribe(f"{prefix}/15.celery.pidbox")
    transport.broadcast("celery.pidbox", _envelope('{"method": "ping"}'))
    [received] = subscription.get(timeout=2)
    assert received.body == b'{"method": "ping"}'
    deadline = time.monotonic() + 2
    raw = None
    while raw is None and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.5)
        if message and message["type"] == "message":
            raw = message["data"]
    assert raw is not None and json.loads(raw)["properties"]["body_encoding"] == "base64"
    listener.close()
    subscription.close()


# --- remote-control replies through kombu's direct exchange -------------------------------

REPLIES = "reply.celery.pidbox"


def test_is_a_direct_replies_transport(transport: KombuRedisTransport) -> None:
    assert isinstance(transport, DirectReplies)


def test_reply_queue_gets_what_kombu_publishes_to_the_direct_exchange(
    transport: KombuRedisTransport, redis_client: redis.Redis, redis_url: str, prefix: str
) -> None:
    """A Celery worker's reply: kombu looks the binding up and LPUSHes onto our queue."""
    kombu = pytest.importorskip("kombu")
    oid = "oid-" + prefix.rstrip(":")
    replies = transport.reply_queue(REPLIES, oid)
    table = f"{prefix}_kombu.binding.{REPLIES}"
    member = f"{oid}\x06\x16\x06\x16{oid}.{REPLIES}".encode()
    assert member in redis_client.smembers(table)
    exchange = kombu.Exchange(REPLIES, type="direct", durable=False, delivery_mode="transient")
    with kombu.Connection(redis_url, transport_options={"global_keyprefix": prefix}) as conn:
        producer = kombu.Producer(conn.default_channel)
        producer.publish(
            {"w@h": {"ok": "pong"}}, exchange=exchange, routing_key=oid, headers={"ticket": "t1"}
        )
    [reply] = replies.get(timeout=2)
    assert json.loads(reply.body) == {"w@h": {"ok": "pong"}}
    assert reply.headers["ticket"] == "t1"
    assert replies.get(timeout=0.05) == []
    replies.close()
    assert member not in redis_client.smembers(table)
    assert not redis_client.exists(f"{prefix}{oid}.{REPLIES}")


def test_send_reply_reaches_a_kombu_reply_queue(
    transport: KombuRedisTransport, redis_client: redis.Redis, redis_url: str, prefix: str
) -> None:
    """A Celery client's reply queue, declared and bound by kombu as Celery's Mailbox does."""
    kombu = pytest.importorskip("kombu")
    oid = "oid-" + prefix.rstrip(":")
    exchange = kombu.Exchange(REPLIES, type="direct", durable=False, delivery_mode="transient")
    queue = kombu.Queue(
        f"{oid}.{REPLIES}",
        exchange=exchange,
        routing_key=oid,
        auto_delete=True,
        expires=10.0,
        message_ttl=300.0,
    )
    transport.send_reply(REPLIES, "nobody-bound", _envelope('{"lost": true}', ticket="t0"))  # dropped
    with kombu.Connection(redis_url, transport_options={"global_keyprefix": prefix}) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        transport.send_reply(REPLIES, oid, _envelope('{"w@h": {"ok": "pong"}}', ticket="t1", clock=3))
        message = bound.get(no_ack=True)
        assert message is not None
        assert message.payload == {"w@h": {"ok": "pong"}}
        assert message.headers["ticket"] == "t1"
        assert message.delivery_info["routing_key"] == oid
        assert bound.get(no_ack=True) is None
        bound.delete()
    assert redis_client.llen(f"{prefix}nobody-bound.{REPLIES}") == 0
