"""The streams transport against a real Redis: delivery, leases, counts, delay, priorities, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from celeriac.plugin import Broadcaster
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import Transport
from celeriac.testing import wait_for
from celeriac_redis import RedisTransport

from .conftest import make_config


def _envelope(body: str, **headers: str) -> Envelope:
    return Envelope(body=body.encode(), content_type="application/json", headers=headers)


def _bodies(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.body.decode() for d in deliveries]


@pytest.fixture
def transport(redis_url: str, prefix: str) -> Iterator[RedisTransport]:
    transport = RedisTransport(redis_url, make_config(prefix))
    yield transport
    transport.close()


@pytest.fixture
def short_lease(redis_url: str, prefix: str) -> Iterator[RedisTransport]:
    transport = RedisTransport(redis_url, make_config(prefix, visibility_timeout=0.3, reclaim_interval=0.0))
    yield transport
    transport.close()


def test_is_a_transport_and_a_broadcaster(transport: RedisTransport) -> None:
    assert isinstance(transport, Transport)
    assert isinstance(transport, Broadcaster)


def test_publish_fetch_ack(transport: RedisTransport, redis_client: redis.Redis, prefix: str) -> None:
    envelope = Envelope(
        body=b"\x00\xffpayload",
        content_type="application/x-test",
        content_encoding="binary",
        headers={"task": "t", "retries": 0, "eta": None},
        properties={"correlation_id": "abc", "priority": 0},
    )
    transport.publish("q", [envelope])
    [delivery] = transport.fetch(["q"], limit=10, timeout=0)
    assert delivery.envelope == envelope
    assert (delivery.queue, delivery.delivery_count, delivery.redelivered) == ("q", 1, False)
    assert transport.fetch(["q"], limit=10, timeout=0) == []
    transport.ack([delivery])
    assert redis_client.xlen(f"{prefix}{{q}}:0") == 0  # acked entries are deleted, not only acked
    assert redis_client.xpending(f"{prefix}{{q}}:0", "celeriac")["pending"] == 0


def test_one_fetch_takes_many_in_fifo_order(transport: RedisTransport) -> None:
    transport.publish("q", [_envelope(str(n)) for n in range(50)])
    assert _bodies(transport.fetch(["q"], limit=30, timeout=0)) == [str(n) for n in range(30)]
    assert _bodies(transport.fetch(["q"], limit=30, timeout=0)) == [str(n) for n in range(30, 50)]


def test_higher_priority_bands_first(transport: RedisTransport) -> None:
    for body, priority in [("a", 0), ("b", 0), ("c", 5), ("d", 9), ("e", 2), ("f", 4)]:
        transport.publish("q", [_envelope(body)], priority=priority)
    transport.publish("q", [_envelope("g")], priority=42)  # clamped to 9
    # Bands 0-2, 3-5, 6-8, 9: FIFO within a band.
    assert _bodies(transport.fetch(["q"], limit=2, timeout=0)) == ["d", "g"]
    assert _bodies(transport.fetch(["q"], limit=10, timeout=0)) == ["c", "f", "a", "b", "e"]


def test_fetch_serves_several_queues_by_band(transport: RedisTransport) -> None:
    transport.publish("low", [_envelope("l1"), _envelope("l2")])
    transport.publish("high", [_envelope("h1")], priority=3)
    transport.publish("other", [_envelope("o1")], priority=9)
    deliveries = transport.fetch(["low", "high"], limit=10, timeout=0)
    assert [(d.queue, d.envelope.body) for d in deliveries] == [
        ("high", b"h1"),
        ("low", b"l1"),
        ("low", b"l2"),
    ]


def test_fetch_blocks_until_a_publish(transport: RedisTransport, redis_url: str, prefix: str) -> None:
    producer = RedisTransport(redis_url, make_config(prefix))
    assert transport.fetch(["q"], limit=1, timeout=0.05) == []
    timer = threading.Timer(0.2, producer.publish, ("q", [_envelope("x")]))
    timer.start()
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["x"]
    assert 0.15 < time.monotonic() - started < 0.5  # woken by the entry, not by polling
    timer.join()
    producer.close()


def _woken_once(transport: RedisTransport, producer: RedisTransport) -> None:
    """Leave ``transport`` as a worker is after a blocking read delivered a message."""
    assert transport.fetch(["q"], limit=1, timeout=0.05) == []
    timer = threading.Timer(0.05, producer.publish, ("q", [_envelope("first")]))
    timer.start()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["first"]
    timer.join()
    assert transport._block_again_until > time.monotonic()


def test_after_a_blocking_read_the_next_fetch_blocks_at_once(
    transport: RedisTransport, redis_url: str, prefix: str
) -> None:
    producer = RedisTransport(redis_url, make_config(prefix))
    _woken_once(transport, producer)
    timer = threading.Timer(0.1, producer.publish, ("q", [_envelope("second")]))
    timer.start()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["second"]
    timer.join()
    # Entries already waiting are returned at once, highest band first, none lost or doubled.
    producer.publish("q", [_envelope("low")])
    producer.publish("q", [_envelope("high")], priority=9)
    assert _bodies(transport.fetch(["q"], limit=5, timeout=3)) == ["high", "low"]
    producer.close()


def test_a_delayed_message_is_promoted_after_a_blocking_read(
    transport: RedisTransport, redis_url: str, prefix: str
) -> None:
    producer = RedisTransport(redis_url, make_config(prefix))
    _woken_once(transport, producer)
    producer.publish("q", [_envelope("later")], delay=0.2)  # a wake entry ends the next read
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["later"]
    assert 0.15 < time.monotonic() - started < 0.2 + 0.3
    producer.close()


def test_the_surplus_of_a_read_is_handed_out_next_and_given_back_on_close(
    transport: RedisTransport, redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    producer = RedisTransport(redis_url, make_config(prefix))
    _woken_once(transport, producer)
    producer.publish("q", [_envelope("h1"), _envelope("h2")], priority=9)
    producer.publish("q", [_envelope("l1"), _envelope("l2"), _envelope("l3")])
    # One XREADGROUP answers from both bands, two entries each: two more than asked for.
    assert _bodies(transport.fetch(["q"], limit=2, timeout=1)) == ["h1", "h2"]
    assert len(transport._surplus) == 2
    transport.extend(transport._surplus)  # renewable, like any leased delivery
    [l1] = transport.fetch(["q"], limit=1, timeout=0)
    assert _bodies([l1]) == ["l1"]
    transport.ack([l1])
    transport.close()  # gives "l2" back, not counted as a delivery
    other = RedisTransport(redis_url, make_config(prefix))
    deliveries = other.fetch(["q"], limit=5, timeout=0)
    assert sorted(_bodies(deliveries)) == ["l2", "l3"]
    assert [d.delivery_count for d in deliveries] == [1, 1]
    other.close()
    producer.close()


def test_fetch_returns_empty_after_timeout(transport: RedisTransport) -> None:
    started = time.monotonic()
    assert transport.fetch(["q"], limit=1, timeout=0.3) == []
    assert 0.25 < time.monotonic() - started < 1.0


def test_delay_hides_message_until_due(transport: RedisTransport) -> None:
    transport.publish("q", [_envelope("later")], delay=0.4)
    transport.publish("q", [_envelope("now")])
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["now"]
    assert transport.queue_length("q") == 1  # delayed messages count as waiting
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["later"]
    assert 0.2 < time.monotonic() - started < 1.0


def test_delayed_publish_wakes_a_blocked_fetch(
    transport: RedisTransport, redis_url: str, prefix: str
) -> None:
    producer = RedisTransport(redis_url, make_config(prefix))
    timer = threading.Timer(0.1, producer.publish, ("q", [_envelope("soon")]), {"delay": 0.2})
    timer.start()
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=3)) == ["soon"]
    assert time.monotonic() - started < 0.3 + 0.25  # Redis checks block timeouts at its hz (10/s)
    timer.join()
    producer.close()


def test_delayed_messages_keep_their_priority(transport: RedisTransport) -> None:
    transport.publish("q", [_envelope("low")], delay=0.05)
    transport.publish("q", [_envelope("high")], priority=9, delay=0.05)
    time.sleep(0.1)
    assert _bodies(transport.fetch(["q"], limit=2, timeout=0)) == ["high", "low"]


def test_expired_lease_is_reclaimed_with_its_count(
    short_lease: RedisTransport, redis_url: str, prefix: str
) -> None:
    other = RedisTransport(redis_url, make_config(prefix, visibility_timeout=0.3, reclaim_interval=0.0))
    short_lease.publish("q", [_envelope("x")])
    fetched = time.monotonic()
    [first] = short_lease.fetch(["q"], limit=1, timeout=0)
    early = other.fetch(["q"], limit=1, timeout=0)
    assert early == [] or time.monotonic() - fetched >= 0.3  # not before the lease ends
    # Redis times the lease on its own clock: wait for the fact, the message taken again.
    [second] = early or wait_for(lambda: other.fetch(["q"], limit=1, timeout=0), 10, "the lease reclaimed")
    assert (second.envelope.body, second.delivery_count, second.redelivered) == (b"x", 2, True)
    short_lease.ack([first])  # lost its lease: this ack must not drop the message
    short_lease.reject([first], requeue=True)
    short_lease.extend([first])
    assert other.queue_length("q") == 0
    # second's holder never acks either
    [third] = wait_for(lambda: short_lease.fetch(["q"], limit=1, timeout=0), 10, "the lease reclaimed again")
    assert third.delivery_count == 3
    short_lease.ack([third])
    time.sleep(0.35)  # a lease's time on Redis's clock: an acknowledged message never comes back
    assert short_lease.fetch(["q"], limit=1, timeout=0) == []
    other.close()


def test_extend_keeps_a_live_lease(redis_url: str, prefix: str) -> None:
    config = make_config(prefix, visibility_timeout=1.0, reclaim_interval=0.0)
    holder, other = RedisTransport(redis_url, config), RedisTransport(redis_url, config)
    holder.publish("q", [_envelope("x")])
    fetched = time.monotonic()
    deliveries = holder.fetch(["q"], limit=1, timeout=0)
    renewed = fetched
    # Renewed every 0.25 s (a quarter of the lease, room for a busy machine) until twice the
    # lease has gone by since the fetch: no one else gets the message meanwhile.
    while time.monotonic() - fetched < 2.0:
        time.sleep(0.25)  # the holder's renewal interval, the pace under test
        assert time.monotonic() - renewed < 1.0, "the test itself fell behind the lease"
        holder.extend(deliveries)
        renewed = time.monotonic()
        assert other.fetch(["q"], limit=1, timeout=0) == []
    holder.ack(deliveries)
    time.sleep(1.05)  # a lease's time on Redis's clock: an acknowledged message never comes back
    assert other.fetch(["q"], limit=1, timeout=0) == []
    holder.close()
    other.close()


def test_reject_requeues_with_count_or_drops(transport: RedisTransport) -> None:
    transport.publish("q", [_envelope("a"), _envelope("b")], priority=9)
    deliveries = transport.fetch(["q"], limit=2, timeout=0)
    transport.reject(deliveries[:1], requeue=True)
    transport.reject(deliveries[1:], requeue=False)
    assert transport.queue_length("q") == 1
    [again] = transport.fetch(["q"], limit=2, timeout=0)
    assert (again.envelope.body, again.delivery_count) == (b"a", 2)
    transport.reject([again], requeue=True)
    [third] = transport.fetch(["q"], limit=2, timeout=0)
    assert third.delivery_count == 3
    transport.ack([third])
    assert transport.queue_length("q") == 0


def test_dead_letter_list_and_requeue(transport: RedisTransport) -> None:
    envelope = _envelope("poison", task="t")
    transport.publish("q", [envelope], priority=4)
    [delivery] = transport.fetch(["q"], limit=1, timeout=0)
    before = time.time()
    transport.dead_letter(delivery, "boom")
    assert transport.queue_length("q") == 0
    [dead] = transport.dead_letters()
    assert (dead.queue, dead.envelope, dead.reason) == ("q", envelope, "boom")
    assert before - 1 <= dead.failed_at <= time.time() + 1  # the server's clock
    assert transport.dead_letters(queue="other") == []
    assert transport.dead_letters(queue="q") == [dead]
    assert transport.requeue_dead_letter(dead.id) is True
    assert transport.requeue_dead_letter(dead.id) is False
    assert transport.requeue_dead_letter("unknown") is False
    assert transport.requeue_dead_letter("q@not-an-id") is False
    assert transport.dead_letters() == []
    [again] = transport.fetch(["q"], limit=1, timeout=0)
    assert (again.envelope, again.delivery_count) == (envelope, 1)


def test_dead_letters_of_all_queues_oldest_first(transport: RedisTransport) -> None:
    for queue in ("b", "a"):
        transport.publish(queue, [_envelope(queue)])
        [delivery] = transport.fetch([queue], limit=1, timeout=0)
        transport.dead_letter(delivery, f"reason {queue}")
        time.sleep(0.01)
    assert [d.reason for d in transport.dead_letters()] == ["reason b", "reason a"]
    assert [d.reason for d in transport.dead_letters(limit=1)] == ["reason b"]


def test_purge_dead_letters_of_one_queue_or_all(
    transport: RedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    assert isinstance(transport, DeadLetterPurger)
    for queue, count in (("q", 3), ("other", 2)):
        transport.publish(queue, [_envelope(f"{queue}{i}") for i in range(count)])
        for delivery in transport.fetch([queue], limit=count, timeout=0):
            transport.dead_letter(delivery, "boom")
    transport.publish("q", [_envelope("alive")])
    assert transport.purge_dead_letters("q") == 3
    assert not redis_client.exists(f"{prefix}{{q}}:dead")
    assert transport.purge_dead_letters("q") == 0
    assert [d.queue for d in transport.dead_letters()] == ["other", "other"]
    assert transport.purge_dead_letters() == 2
    assert transport.dead_letters() == []
    assert transport.purge_dead_letters("never-used") == 0
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["alive"]


def test_unreadable_entry_is_dead_lettered(
    transport: RedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    redis_client.xadd(f"{prefix}{{q}}:0", {"m": b"garbage"})
    transport.publish("q", [_envelope("fine")])
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["fine"]
    [dead] = redis_client.xrange(f"{prefix}{{q}}:dead")
    assert b"unreadable" in dead[1][b"reason"]


def test_purge_and_queue_length(transport: RedisTransport) -> None:
    transport.publish("q", [_envelope(str(i)) for i in range(5)])
    transport.publish("q", [_envelope("high")], priority=9)
    transport.publish("q", [_envelope("delayed")], delay=60)
    transport.publish("other", [_envelope("o")])
    assert transport.queue_length("q") == 7
    leased = transport.fetch(["q"], limit=2, timeout=0)
    assert transport.queue_length("q") == 5  # leased messages are not waiting
    assert transport.purge("q") == 5
    assert transport.queue_length("q") == 0
    assert transport.queue_length("other") == 1
    transport.ack(leased)  # still held: the purge left them alone
    assert transport.purge("new") == 0
    transport.publish("q", [_envelope("after")])
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["after"]


def test_stream_created_by_a_producer_before_any_group(
    transport: RedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    transport.publish("q", [_envelope("1"), _envelope("2")])
    assert redis_client.xinfo_groups(f"{prefix}{{q}}:0") == []
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["1", "2"]


def test_a_flushed_queue_heals(transport: RedisTransport, redis_client: redis.Redis, prefix: str) -> None:
    transport.publish("q", [_envelope("1")])
    transport.ack(transport.fetch(["q"], limit=5, timeout=0))
    redis_client.delete(f"{prefix}{{q}}:0")  # as after FLUSHDB or a restart without persistence
    transport.publish("q", [_envelope("2")])
    assert _bodies(transport.fetch(["q"], limit=5, timeout=0)) == ["2"]


def test_keys_carry_the_queue_as_hash_tag(
    transport: RedisTransport, redis_client: redis.Redis, prefix: str
) -> None:
    transport.publish("jobs", [_envelope("x")], priority=6)
    transport.publish("jobs", [_envelope("y")], delay=30)
    keys = sorted(key.decode() for key in redis_client.scan_iter(match=f"{prefix}*"))
    assert keys == [f"{prefix}{{jobs}}:6", f"{prefix}{{jobs}}:delayed", f"{prefix}{{jobs}}:wake"]


def test_broadcast_reaches_every_subscriber(transport: RedisTransport) -> None:
    first, second = transport.subscribe("control"), transport.subscribe("control")
    other = transport.subscribe("elsewhere")
    transport.broadcast("control", _envelope("ping", method="ping"))
    transport.broadcast("control", _envelope("pong"))
    assert _bodies_of(first.get(timeout=2)) + _bodies_of(first.get(timeout=0.2)) == ["ping", "pong"]
    assert _bodies_of(second.get(timeout=2))[:1] == ["ping"]
    assert other.get(timeout=0.1) == []
    for subscription in (first, second, other):
        subscription.close()


def _bodies_of(envelopes: list[Envelope]) -> list[str]:
    return [e.body.decode() for e in envelopes]
