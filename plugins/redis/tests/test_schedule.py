"""The Redis schedule store's leader lock, against a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from celeriac.plugin import BeatLock
from celeriac_redis import RedisScheduleStore

from .conftest import make_config


@pytest.fixture
def stores(redis_url: str, prefix: str) -> Iterator[tuple[RedisScheduleStore, RedisScheduleStore]]:
    pair = (
        RedisScheduleStore(redis_url, make_config(prefix)),
        RedisScheduleStore(redis_url, make_config(prefix)),
    )
    yield pair
    for store in pair:
        store.close()


def test_is_a_beat_lock(stores: tuple[RedisScheduleStore, RedisScheduleStore]) -> None:
    assert isinstance(stores[0], BeatLock)


def test_one_holder_at_a_time(stores: tuple[RedisScheduleStore, RedisScheduleStore]) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 5)
    assert not b.acquire("beat", "b", 5)
    assert a.acquire("beat", "a", 5)
    assert a.renew("beat", "a", 5)
    assert not b.renew("beat", "b", 5)
    assert b.acquire("other", "b", 5)


def test_the_lease_runs_on_the_server(
    stores: tuple[RedisScheduleStore, RedisScheduleStore], redis_client: redis.Redis, prefix: str
) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 5)
    ttl = redis_client.pttl(f"{prefix}{{beat}}:lock:beat")
    assert isinstance(ttl, int) and 4000 < ttl <= 5000
    assert a.acquire("beat", "a", 0.1)  # re-taking sets the new lease
    time.sleep(0.15)
    assert not a.renew("beat", "a", 5)
    assert b.acquire("beat", "b", 5)


def test_release_only_by_the_owner(stores: tuple[RedisScheduleStore, RedisScheduleStore]) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 60)
    b.release("beat", "b")
    assert not b.acquire("beat", "b", 60)
    a.release("beat", "a")
    assert b.acquire("beat", "b", 60)


def test_claims_are_fenced_by_the_lease(stores: tuple[RedisScheduleStore, RedisScheduleStore]) -> None:
    a, b = stores
    assert a.claimed_at("e") is None
    assert a.acquire("beat", "a", 0.1)
    assert a.claim("beat", "a", "e", 1700000000.125)
    assert not b.claim("beat", "b", "e", 20.0)
    assert b.claimed_at("e") == 1700000000.125  # floats round-trip exactly
    time.sleep(0.15)
    assert not a.claim("beat", "a", "e", 30.0)
    assert b.acquire("beat", "b", 5)
    assert b.claim("beat", "b", "e", 40.0)
    assert a.claimed_at("e") == 40.0
    assert a.last_run_at("e") is None  # claims and last runs are kept apart
