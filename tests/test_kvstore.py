"""The key-value result-store base (celeriac._contract.kvstore): the contract on the in-memory double and
on a real Redis through a short KeyValue of the test's own, and KeyValueResultStore's rules
(SUCCESS is final, expiry, chords counted once per task, refused values fail their task)
through real workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import states
from celeriac._client.canvas import chain
from celeriac._client.canvas import chord
from celeriac._client.canvas import group
from celeriac.plugin import KeyValue
from celeriac.plugin import KeyValueResultStore
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac.plugin import hookimpl
from celeriac.testing import MemoryKeyValue
from celeriac.testing import check_key_value
from celeriac.testing import worker_thread
from celeriac_redis import testing as redis_testing


class RedisKeyValue:
    """A whole KeyValue on Redis in a few lines: how short a store on the base can be."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.client.get(self.prefix + key)
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self.client.mget([self.prefix + key for key in keys])) if keys else []

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        self.client.set(self.prefix + key, value, px=None if expires is None else int(expires * 1000))

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(self.prefix + key, member)
            pipe.scard(self.prefix + key)
            if expires is not None:
                pipe.pexpire(self.prefix + key, int(expires * 1000))
            added, size, *_ = pipe.execute()
        return int(size) if added else 0

    def sweep(self) -> int:
        return 0  # Redis expires keys itself

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def redis_kv() -> Iterator[RedisKeyValue]:
    url = redis_testing.require_redis(redis_testing.server_url())
    with redis_testing.private_prefix(url, name="celeriac-kvstore") as prefix:
        kv = RedisKeyValue(url, prefix)
        yield kv
        kv.close()


def test_memory_double_keeps_the_contract() -> None:
    check_key_value(MemoryKeyValue())


def test_a_real_store_keeps_the_contract(redis_kv: RedisKeyValue) -> None:
    check_key_value(redis_kv)


def test_contract_catches_a_store_that_counts_a_part_twice() -> None:
    class CountsTwice:
        def __init__(self) -> None:
            self.inner = MemoryKeyValue()
            self.counts: dict[str, int] = {}

        def get(self, key: str) -> bytes | None:
            return self.inner.get(key)

        def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
            return self.inner.get_many(keys)

        def set(self, key: str, value: bytes, expires: float | None) -> None:
            self.inner.set(key, value, expires)

        def delete(self, key: str) -> None:
            self.inner.delete(key)

        def add_member(self, key: str, member: str, expires: float | None) -> int:
            self.counts[key] = self.counts.get(key, 0) + 1  # an INCR: not idempotent
            return self.counts[key]

        def sweep(self) -> int:
            return self.inner.sweep()

        def close(self) -> None:
            pass

    with pytest.raises(AssertionError, match="added again"):
        check_key_value(CountsTwice())


# --- KeyValueResultStore -------------------------------------------------------------------


class KvStorePlugin:
    """Offers ``kv://`` result stores over one KeyValue, as a store plugin would."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @hookimpl
    def celeriac_add_result_stores(self) -> Sequence[ResultStoreSpec]:
        return [
            ResultStoreSpec(schemes=("kv",), factory=lambda url, config: KeyValueResultStore(self.kv, config))
        ]


def make_app(kv: KeyValue, **settings: Any) -> Celeriac:
    return Celeriac(
        "kvtests",
        broker="memory://",
        result_store="kv://",
        plugins=[celeriac.testing, KvStorePlugin(kv)],
        env={},
        config=False,
        **settings,
    )


def record(task_id: str, state: str, result: Any = None) -> ResultRecord:
    meta = {"status": state, "result": result, "traceback": None, "children": [], "task_id": task_id}
    return ResultRecord(
        task_id=task_id, state=state, payload=json.dumps(meta).encode(), content_type="application/json"
    )


def test_success_is_final_and_json_is_stored_as_celery_does() -> None:
    kv = MemoryKeyValue()
    store = KeyValueResultStore(kv, make_app(kv).config)
    store.store(record("t1", states.STARTED))
    store.store(record("t1", states.SUCCESS, 5))
    store.store(record("t1", states.FAILURE, "late duplicate"))
    got = store.get("t1")
    assert got is not None and got.state == states.SUCCESS
    assert json.loads(kv.get("celery-task-meta-t1") or b"")["result"] == 5  # Celery's key, JSON as is
    assert store.get_many(["t1", "nothing"]) == [got, None]
    store.forget("t1")
    assert store.get("t1") is None


def test_other_content_types_round_trip_with_their_state() -> None:
    kv = MemoryKeyValue()
    store = KeyValueResultStore(kv, make_app(kv).config)
    binary = ResultRecord(
        task_id="t2",
        state=states.RETRY,
        payload=b"\x80\x05\nline\n",
        content_type="application/x-python-serialize",
        content_encoding="binary",
    )
    store.store(binary)
    assert store.get("t2") == binary
    assert store.wait("t2", frozenset({states.RETRY}), timeout=1) == binary


def test_entries_expire_after_result_expires_and_the_sweep_removes_them() -> None:
    kv = MemoryKeyValue()
    store = KeyValueResultStore(kv, make_app(kv, result_expires=0.2).config, sweep_interval=0.0)
    store.store(record("old", states.SUCCESS, 1))
    assert store.chord_part_done("g", "old", 2) is False
    deadline = time.monotonic() + 5
    while store.get("old") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    store.store(record("new", states.SUCCESS, 2))  # a write past sweep_interval sweeps
    assert kv.sweep() == 0, "the write should have swept the expired entries already"
    assert store.get("new") is not None


def test_wait_returns_none_after_the_timeout() -> None:
    kv = MemoryKeyValue()
    store = KeyValueResultStore(kv, make_app(kv).config)
    started = time.monotonic()
    assert store.wait("never", frozenset({states.SUCCESS}), timeout=0.2) is None
    assert 0.2 <= time.monotonic() - started < 2


def test_chord_parts_count_once_per_task() -> None:
    kv = MemoryKeyValue()
    store = KeyValueResultStore(kv, make_app(kv).config)
    assert store.chord_part_done("g1", "a", 2) is False
    assert store.chord_part_done("g1", "a", 2) is False  # redelivered: counts once
    assert store.chord_part_done("g1", "b", 2) is True
    assert store.chord_part_done("g1", "b", 2) is False  # never twice
    assert store.chord_part_done("g-celery", "x", 0) is False  # no size: logged, never completes


def test_unreachable_error_masks_the_password() -> None:
    error = StoreUnreachableError("db+postgresql://app:s3cret@db.example:5432/x", "connection refused")
    assert "s3cret" not in str(error)
    assert "db+postgresql://app:***@db.example:5432/x" in str(error)
    assert "connection refused" in str(error)


@pytest.fixture(params=["memory", "redis"])
def kv(request: pytest.FixtureRequest) -> Iterator[KeyValue]:
    if request.param == "memory":
        yield MemoryKeyValue()
    else:
        yield request.getfixturevalue("redis_kv")


def test_workflows_run_on_the_base(kv: KeyValue) -> None:
    app = make_app(kv)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def total(values: list[int]) -> int:
        return sum(values)

    with worker_thread(app, concurrency=4):
        assert chain(add.s(1, 2), add.s(3), add.s(4)).apply_async().get(timeout=10) == 10
        assert group(add.s(n, n) for n in range(10)).apply_async().get(timeout=10) == [
            2 * n for n in range(10)
        ]
        assert chord((add.s(n, 1) for n in range(50)), total.s()).apply_async().get(timeout=20) == sum(
            range(1, 51)
        )
    app.close()


class SmallItems:
    """A store whose items hold at most 2,000 bytes, as memcached's hold at most 1 MiB (room
    for a FAILURE record with its traceback, not for the 5,000-byte result below)."""

    def __init__(self) -> None:
        self.inner = MemoryKeyValue()

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.inner.get_many(keys)

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        if len(value) > 2000:
            raise ValueRefusedError(f"a value of {len(value)} bytes is over the item size of 2000 bytes")
        self.inner.set(key, value, expires)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        return self.inner.add_member(key, member, expires)

    def sweep(self) -> int:
        return self.inner.sweep()

    def close(self) -> None:
        pass


def test_a_result_the_store_refuses_fails_its_task_with_the_reason() -> None:
    app = make_app(SmallItems())
    runs: list[int] = []

    @app.task
    def big(n: int) -> str:
        runs.append(n)
        return "x" * n

    with worker_thread(app, concurrency=1):
        assert big.delay(10).get(timeout=10) == "x" * 10
        result = big.delay(5000)
        with pytest.raises(ValueRefusedError, match="over the item size of 2000 bytes"):
            result.get(timeout=10)
    assert result.state == states.FAILURE
    assert runs == [10, 5000], "the refused result must fail the task, not send it round again"
    app.close()
