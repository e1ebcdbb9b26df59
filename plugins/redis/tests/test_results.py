"""The result store against a real Redis: Celery's keys, SUCCESS is final, expiry, pub/sub wake-ups."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from celeriac.plugin import BatchStore
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStore
from celeriac_redis import RedisResultStore
from celeriac_redis import RedisScheduleStore

from .conftest import make_config


def _record(task_id: str, state: str, result: object = None) -> ResultRecord:
    payload = json.dumps({"status": state, "result": result, "task_id": task_id}).encode()
    return ResultRecord(task_id=task_id, state=state, payload=payload, content_type="application/json")


@pytest.fixture(params=["resp3", "resp2"])
def results(redis_url: str, prefix: str, request: pytest.FixtureRequest) -> Iterator[RedisResultStore]:
    """The store, waiting the RESP3 way (one round trip) or the RESP2 way (Redis before 6)."""
    store = RedisResultStore(redis_url, make_config(prefix))
    if request.param == "resp2":
        store._resp3 = False
    yield store
    store.close()


def test_is_a_result_store(results: RedisResultStore) -> None:
    assert isinstance(results, ResultStore)


def test_celery_key_and_bytes(results: RedisResultStore, redis_client: redis.Redis, prefix: str) -> None:
    record = _record("t1", "SUCCESS", 42)
    results.store(record)
    assert redis_client.get(f"{prefix}celery-task-meta-t1") == record.payload
    assert 86400 - 5 < redis_client.ttl(f"{prefix}celery-task-meta-t1") <= 86400
    assert results.get("t1") == record
    assert results.get("missing") is None


def test_states_replace_each_other_until_success(results: RedisResultStore) -> None:
    results.store(_record("t", "STARTED"))
    results.store(_record("t", "RETRY", "again"))
    assert results.get("t") == _record("t", "RETRY", "again")


@pytest.mark.parametrize("later", ["STARTED", "FAILURE", "RETRY", "SUCCESS"])
def test_success_is_never_overwritten(results: RedisResultStore, later: str) -> None:
    results.store(_record("t", "SUCCESS", 42))
    results.store(_record("t", later, "late"))
    assert results.get("t") == _record("t", "SUCCESS", 42)


def test_store_many_saves_each_under_the_same_rule(
    results: RedisResultStore, redis_client: redis.Redis, prefix: str
) -> None:
    assert isinstance(results, BatchStore)
    results.store(_record("done", "SUCCESS", 1))
    seen: list[tuple[ResultRecord | None, float]] = []

    def wait() -> None:
        seen.append((results.wait("t7", frozenset({"SUCCESS"}), 5), time.monotonic()))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    stored = time.monotonic()
    results.store_many([_record(f"t{n}", "SUCCESS", n) for n in range(10)] + [_record("done", "FAILURE")])
    waiter.join(5)
    assert results.get_many([f"t{n}" for n in range(10)]) == [
        _record(f"t{n}", "SUCCESS", n) for n in range(10)
    ]
    assert results.get("done") == _record("done", "SUCCESS", 1)  # SUCCESS is never replaced
    assert 86400 - 5 < redis_client.ttl(f"{prefix}celery-task-meta-t9") <= 86400
    [(record, woken)] = seen
    assert record == _record("t7", "SUCCESS", 7)
    assert woken - stored < 0.1  # woken by the publish, as by store()


def test_non_json_results_keep_type_state_and_the_rule(results: RedisResultStore) -> None:
    record = ResultRecord(
        task_id="t", state="SUCCESS", payload=b"\x80\x04binary\nlines", content_type="application/x-test"
    )
    results.store(record)
    results.store(_record("t", "FAILURE"))
    assert results.get("t") == record


def test_wait_is_woken_by_the_publish(results: RedisResultStore, redis_url: str, prefix: str) -> None:
    writer = RedisResultStore(redis_url, make_config(prefix))
    results.store(_record("t", "STARTED"))
    timer = threading.Timer(0.2, writer.store, (_record("t", "SUCCESS", 1),))
    started = time.monotonic()  # before the timer starts: it stores 0.2 s or more after this
    timer.start()
    record = results.wait("t", frozenset({"SUCCESS", "FAILURE"}), timeout=5)
    elapsed = time.monotonic() - started
    assert record is not None and record.state == "SUCCESS"
    # The waiter reads the key again only every 2 s (_RECHECK): an answer well within that
    # came from the publish (with room for a busy machine's scheduling).
    assert 0.2 <= elapsed < 1.0
    timer.join()
    writer.close()


def test_wait_returns_a_stored_result_at_once(results: RedisResultStore) -> None:
    results.store(_record("t", "FAILURE", {"exc_type": "ValueError"}))
    record = results.wait("t", frozenset({"SUCCESS", "FAILURE"}), timeout=1)
    assert record is not None and record.state == "FAILURE"


def test_wait_ignores_other_states_and_tasks(results: RedisResultStore, redis_url: str, prefix: str) -> None:
    writer = RedisResultStore(redis_url, make_config(prefix))

    def write() -> None:
        writer.store(_record("other", "SUCCESS"))
        writer.store(_record("t", "STARTED"))
        time.sleep(0.1)
        writer.store(_record("t", "SUCCESS", 7))

    thread = threading.Thread(target=write)
    thread.start()
    record = results.wait("t", frozenset({"SUCCESS"}), timeout=5)
    assert record == _record("t", "SUCCESS", 7)
    thread.join()
    writer.close()


def test_wait_times_out_and_connections_are_reused(results: RedisResultStore) -> None:
    started = time.monotonic()
    assert results.wait("t", frozenset({"SUCCESS"}), timeout=0.2) is None
    assert 0.2 <= time.monotonic() - started < 0.6
    for n in range(20):
        results.store(_record(f"n{n}", "SUCCESS"))
        assert results.wait(f"n{n}", frozenset({"SUCCESS"}), timeout=1) is not None
    assert len(results._idle if results._resp3 is False else results._idle_waiters) == 1


def test_a_reused_connection_ignores_its_previous_channel(
    results: RedisResultStore, redis_url: str, prefix: str
) -> None:
    writer = RedisResultStore(redis_url, make_config(prefix))
    assert results.wait("first", frozenset({"SUCCESS"}), timeout=0.05) is None
    writer.store(_record("first", "SUCCESS", "not mine"))  # may reach the kept connection
    timer = threading.Timer(0.1, writer.store, (_record("second", "SUCCESS", 2),))
    timer.start()
    assert results.wait("second", frozenset({"SUCCESS"}), timeout=5) == _record("second", "SUCCESS", 2)
    assert results.wait("first", frozenset({"SUCCESS"}), timeout=1) == _record("first", "SUCCESS", "not mine")
    timer.join()
    writer.close()


def test_wait_reads_the_key_again_when_a_message_is_lost(
    results: RedisResultStore, redis_client: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import celeriac_redis._results

    monkeypatch.setattr(celeriac_redis._results, "_RECHECK", 0.1)
    value = _record("t", "SUCCESS", 3).payload
    timer = threading.Timer(0.05, redis_client.set, (f"{prefix}celery-task-meta-t", value))  # no PUBLISH
    timer.start()
    record = results.wait("t", frozenset({"SUCCESS"}), timeout=5)
    assert record is not None and record.payload == value
    timer.join()
    # A GET sent just before the message arrived is answered before the connection is reused.
    for n in range(5):
        results.store(_record(f"n{n}", "SUCCESS", n))
        assert results.wait(f"n{n}", frozenset({"SUCCESS"}), timeout=1) == _record(f"n{n}", "SUCCESS", n)


def test_many_waiters_in_threads(results: RedisResultStore, redis_url: str, prefix: str) -> None:
    got: dict[int, ResultRecord | None] = {}

    def wait(n: int) -> None:
        got[n] = results.wait(f"t{n}", frozenset({"SUCCESS"}), timeout=5)

    threads = [threading.Thread(target=wait, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    writer = RedisResultStore(redis_url, make_config(prefix))
    for n in range(8):
        writer.store(_record(f"t{n}", "SUCCESS", n))
    for thread in threads:
        thread.join(timeout=10)
    assert {n: r.payload if r else None for n, r in got.items()} == {
        n: _record(f"t{n}", "SUCCESS", n).payload for n in range(8)
    }
    writer.close()


def test_results_expire(redis_url: str, prefix: str) -> None:
    store = RedisResultStore(redis_url, make_config(prefix, result_expires=0.2))
    store.store(_record("old", "SUCCESS"))
    assert store.get("old") is not None
    time.sleep(0.3)
    assert store.get("old") is None
    store.store(_record("old", "STARTED"))  # an expired SUCCESS no longer guards the key
    assert store.get("old") == _record("old", "STARTED")
    store.close()


def test_results_can_be_kept_forever(redis_url: str, prefix: str, redis_client: redis.Redis) -> None:
    store = RedisResultStore(redis_url, make_config(prefix, result_expires=0))
    store.store(_record("t", "SUCCESS"))
    assert redis_client.ttl(f"{prefix}celery-task-meta-t") == -1
    store.close()


def test_forget(results: RedisResultStore) -> None:
    results.store(_record("t", "SUCCESS"))
    results.forget("t")
    assert results.get("t") is None
    results.store(_record("t", "FAILURE"))
    assert results.get("t") == _record("t", "FAILURE")


def test_get_many_in_order_with_gaps(results: RedisResultStore) -> None:
    for n in range(3):
        results.store(_record(f"t{n}", "SUCCESS", n))
    ids = ["t2", "missing", "t0", *[f"x{n}" for n in range(1500)], "t1"]
    records = results.get_many(ids)
    assert [r.task_id if r else None for r in records[:3]] == ["t2", None, "t0"]
    assert records[-1] == _record("t1", "SUCCESS", 1)
    assert all(r is None for r in records[3:-1])


def test_schedule_store_roundtrip(redis_url: str, prefix: str) -> None:
    store = RedisScheduleStore(redis_url, make_config(prefix))
    assert store.last_run_at("nightly") is None
    store.set_last_run_at("nightly", 1700000100.25)
    store.close()
    reopened = RedisScheduleStore(redis_url, make_config(prefix))
    assert reopened.last_run_at("nightly") == 1700000100.25
    reopened.close()


def test_chord_parts_complete_once(results: RedisResultStore) -> None:
    calls = [results.chord_part_done("g1", task_id, 3) for task_id in ("a", "b", "b", "c", "a", "c")]
    assert calls == [False, False, False, True, False, False]  # a redelivered part counts once


def test_a_celery_chords_parts_count_before_its_size_is_written(results: RedisResultStore) -> None:
    """A Celery client writes a chord's size (``.s``) only just before it sends the last
    header task, so the first parts may finish before it: they count all the same, and the
    part that completes the chord finds the size (a chord of a Celery client, run here, once
    never finished when a fast worker got there first)."""
    assert results.chord_part_done("celery-group", "a", 0, 0) is False
    assert results.chord_part_done("celery-group", "b", 0, 1) is False
    results.chord_started("celery-group", 3)  # where and what Celery's client writes
    assert results.chord_part_done("celery-group", "c", 0, 2) is True
    assert results.chord_part_done("celery-group", "c", 0, 2) is False  # a redelivered part
    assert results.chord_members("celery-group") == ["a", "b", "c"]


def test_chord_runs_its_body_once_on_redis(redis_url: str, prefix: str) -> None:
    from celeriac import Celeriac
    from celeriac import chord
    from celeriac import group
    from celeriac import testing

    app = Celeriac(
        "tests",
        broker=redis_url,
        plugins=[testing],
        env={},
        config=False,
        **{
            "redis": {"key_prefix": prefix, "result_key_prefix": prefix},
        },
    )
    bodies: list[int] = []

    @app.task(name="t.double")
    def double(x: int) -> int:
        return 2 * x

    @app.task(name="t.total")
    def total(values: list[int]) -> int:
        bodies.append(sum(values))
        return sum(values)

    with testing.worker_thread(app, concurrency=4):
        result = chord(group(double.s(i) for i in range(10)), total.s()).delay()
        assert result.get(timeout=20) == 90
    assert bodies == [90]
    app.close()
