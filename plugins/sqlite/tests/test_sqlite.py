"""Tests of the SQLite transport and stores against real database files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from importlib.metadata import entry_points
from multiprocessing.synchronize import Event
from pathlib import Path

import pluggy
import pytest

import celeriac_sqlite
from celeriac import ConfigError
from celeriac.plugin import BatchStore
from celeriac.plugin import Config
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import ResultRecord
from celeriac.plugin import hookspecs
from celeriac_sqlite import SqliteConfig
from celeriac_sqlite import SqliteResultStore
from celeriac_sqlite import SqliteScheduleStore
from celeriac_sqlite import SqliteTransport


def _url(path: Path) -> str:
    return f"sqlite:///{path}"  # tmp paths are absolute, so this is the four-slash form


def _envelope(body: str, **headers: str) -> Envelope:
    return Envelope(body=body.encode(), content_type="application/json", headers=headers)


def _bodies(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.body.decode() for d in deliveries]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return _url(tmp_path / "broker.sqlite3")


@pytest.fixture
def transport(db_url: str) -> Iterator[SqliteTransport]:
    transport = SqliteTransport(db_url, Config())
    yield transport
    transport.close()


@pytest.fixture
def short_lease(db_url: str) -> Iterator[SqliteTransport]:
    transport = SqliteTransport(db_url, Config(visibility_timeout=0.3))
    yield transport
    transport.close()


@pytest.fixture
def results(db_url: str) -> Iterator[SqliteResultStore]:
    store = SqliteResultStore(db_url, Config())
    yield store
    store.close()


# --- plugin wiring -------------------------------------------------------------------------


def test_entry_point_is_registered() -> None:
    assert "sqlite" in {ep.name for ep in entry_points(group="celeriac.plugins")}


def test_hooks_offer_the_sqlite_scheme_and_config_section() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(celeriac_sqlite)
    pm.check_pending()
    for hook in (pm.hook.celeriac_add_transports, pm.hook.celeriac_add_result_stores):
        [[spec]] = hook()
        assert spec.schemes == ("sqlite",)
    [[schedule_spec]] = pm.hook.celeriac_add_schedule_stores()
    assert schedule_spec.factory is SqliteScheduleStore
    [[section]] = pm.hook.celeriac_add_config_sections()
    assert (section.name, section.cls) == ("sqlite", SqliteConfig)


def test_import_and_construction_create_no_file(tmp_path: Path) -> None:
    code = (
        "import celeriac_sqlite as s; from celeriac._model.config import Config;"
        "s.SqliteTransport('sqlite:///t.sqlite3', Config());"
        "s.SqliteResultStore('sqlite:///r.sqlite3', Config());"
        "s.SqliteScheduleStore('sqlite:///s.sqlite3', Config())"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///", "sqlite:/x.db", "sqlite://host/x.db", "sqlite:///x.db?mode=ro", "redis://x"],
)
def test_bad_url_names_url_and_expected_form(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        SqliteTransport(url, Config())
    assert repr(url) in str(info.value)
    assert "sqlite:////absolute/path.sqlite3" in str(info.value)


def test_relative_url_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    transport = SqliteTransport("sqlite:///sub.sqlite3", Config())
    transport.publish("q", [_envelope("a")])
    transport.close()
    assert (tmp_path / "sub.sqlite3").is_file()


def test_unopenable_path_is_a_config_error(tmp_path: Path) -> None:
    transport = SqliteTransport(_url(tmp_path / "missing" / "x.sqlite3"), Config())
    with pytest.raises(ConfigError, match="cannot open SQLite database"):
        transport.queue_length("q")


def test_settings_apply_wal_and_synchronous(db_url: str) -> None:
    config = Config(sections={"sqlite": SqliteConfig(synchronous="FULL")})
    store = SqliteScheduleStore(db_url, config)
    with store._db.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()


# --- transport -----------------------------------------------------------------------------


def test_publish_fetch_ack(transport: SqliteTransport) -> None:
    envelope = Envelope(
        body=b"\x00payload",
        content_type="application/x-test",
        content_encoding="binary",
        headers={"task": "t", "retries": 0, "eta": "2030-01-01T00:00:00+00:00"},
        properties={"correlation_id": "abc", "delivery_info": {"routing_key": "q"}},
    )
    transport.publish("q", [envelope])
    [delivery] = transport.fetch(["q"], limit=10, timeout=0)
    assert delivery.envelope == envelope
    assert (delivery.queue, delivery.delivery_count, delivery.redelivered) == ("q", 1, False)
    assert transport.fetch(["q"], limit=10, timeout=0) == []
    transport.ack([delivery])
    with transport._db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)


def test_fifo_within_priority_and_higher_priority_first(transport: SqliteTransport) -> None:
    for body, priority in [("a", 0), ("b", 0), ("c", 5), ("d", 9), ("e", 0), ("f", 5)]:
        transport.publish("q", [_envelope(body)], priority=priority)
    transport.publish("q", [_envelope("g"), _envelope("h")], priority=42)  # clamped to 9
    assert _bodies(transport.fetch(["q"], limit=3, timeout=0)) == ["d", "g", "h"]
    assert _bodies(transport.fetch(["q"], limit=10, timeout=0)) == ["c", "f", "a", "b", "e"]


def test_fetch_serves_several_queues_by_priority(transport: SqliteTransport) -> None:
    transport.publish("low", [_envelope("l1"), _envelope("l2")])
    transport.publish("high", [_envelope("h1")], priority=3)
    transport.publish("other", [_envelope("o1")], priority=9)
    deliveries = transport.fetch(["low", "high"], limit=10, timeout=0)
    assert [(d.queue, d.envelope.body) for d in deliveries] == [
        ("high", b"h1"),
        ("low", b"l1"),
        ("low", b"l2"),
    ]


def test_delay_hides_message_until_due(transport: SqliteTransport) -> None:
    transport.publish("q", [_envelope("later")], delay=0.3)
    assert transport.fetch(["q"], limit=1, timeout=0.05) == []
    assert transport.queue_length("q") == 1
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=2)) == ["later"]
    assert 0.1 < time.monotonic() - started < 1.0


def test_fetch_wakes_soon_after_publish(transport: SqliteTransport, db_url: str) -> None:
    producer = SqliteTransport(db_url, Config())
    timer = threading.Timer(0.1, producer.publish, ("q", [_envelope("x")]))
    timer.start()
    started = time.monotonic()
    assert _bodies(transport.fetch(["q"], limit=1, timeout=2)) == ["x"]
    assert time.monotonic() - started < 0.1 + 0.25  # one poll_interval late at most, plus slack
    timer.join()
    producer.close()


def test_expired_lease_redelivers_and_stale_ack_is_ignored(short_lease: SqliteTransport) -> None:
    short_lease.publish("q", [_envelope("x")])
    [first] = short_lease.fetch(["q"], limit=1, timeout=0)
    assert short_lease.fetch(["q"], limit=1, timeout=0) == []
    time.sleep(0.35)
    [second] = short_lease.fetch(["q"], limit=1, timeout=0)
    assert (second.delivery_count, second.redelivered) == (2, True)
    short_lease.ack([first])  # the first consumer lost its lease: its ack must not drop the message
    short_lease.reject([first], requeue=True)
    assert short_lease.fetch(["q"], limit=1, timeout=0) == []
    short_lease.ack([second])
    time.sleep(0.35)
    assert short_lease.fetch(["q"], limit=1, timeout=0) == []


def test_extend_keeps_message_invisible(short_lease: SqliteTransport) -> None:
    short_lease.publish("q", [_envelope("x")])
    deliveries = short_lease.fetch(["q"], limit=1, timeout=0)
    for _ in range(2):
        time.sleep(0.2)
        short_lease.extend(deliveries)
    time.sleep(0.1)  # 0.5 s after the fetch, beyond the 0.3 s lease
    assert short_lease.fetch(["q"], limit=1, timeout=0) == []
    short_lease.ack(deliveries)
    assert short_lease.queue_length("q") == 0


def test_reject_requeues_or_drops(transport: SqliteTransport) -> None:
    transport.publish("q", [_envelope("a"), _envelope("b")])
    deliveries = transport.fetch(["q"], limit=2, timeout=0)
    transport.reject(deliveries[:1], requeue=True)
    transport.reject(deliveries[1:], requeue=False)
    [again] = transport.fetch(["q"], limit=2, timeout=0)
    assert (again.envelope.body, again.delivery_count) == (b"a", 2)
    transport.ack([again])
    assert transport.queue_length("q") == 0


def test_dead_letter_list_and_requeue(transport: SqliteTransport) -> None:
    envelope = _envelope("poison", task="t")
    transport.publish("q", [envelope], priority=4)
    [delivery] = transport.fetch(["q"], limit=1, timeout=0)
    before = time.time()
    transport.dead_letter(delivery, "boom")
    assert transport.queue_length("q") == 0
    [dead] = transport.dead_letters()
    assert (dead.queue, dead.envelope, dead.reason) == ("q", envelope, "boom")
    assert before <= dead.failed_at <= time.time()
    assert transport.dead_letters(queue="other") == []
    assert transport.dead_letters(queue="q") == [dead]
    assert transport.requeue_dead_letter(dead.id) is True
    assert transport.requeue_dead_letter(dead.id) is False
    assert transport.requeue_dead_letter("unknown") is False
    assert transport.dead_letters() == []
    [again] = transport.fetch(["q"], limit=1, timeout=0)
    assert (again.envelope, again.delivery_count) == (envelope, 1)


def test_dead_letters_are_listed_oldest_first_with_limit(transport: SqliteTransport) -> None:
    transport.publish("q", [_envelope(str(i)) for i in range(3)])
    for delivery in transport.fetch(["q"], limit=3, timeout=0):
        transport.dead_letter(delivery, f"reason {delivery.envelope.body.decode()}")
    assert [d.reason for d in transport.dead_letters(limit=2)] == ["reason 0", "reason 1"]


def test_purge_dead_letters_of_one_queue_or_all(transport: SqliteTransport) -> None:
    assert isinstance(transport, DeadLetterPurger)
    for queue, count in (("q", 3), ("other", 2)):
        transport.publish(queue, [_envelope(f"{queue}{i}") for i in range(count)])
        for delivery in transport.fetch([queue], limit=count, timeout=0):
            transport.dead_letter(delivery, "boom")
    transport.publish("q", [_envelope("alive")])
    assert transport.purge_dead_letters("q") == 3
    assert transport.purge_dead_letters("q") == 0
    assert [d.queue for d in transport.dead_letters()] == ["other", "other"]
    assert transport.purge_dead_letters() == 2
    assert transport.dead_letters() == []
    assert transport.purge_dead_letters("never-used") == 0
    assert transport.queue_length("q") == 1  # waiting messages are not dead letters


def test_purge_and_queue_length(transport: SqliteTransport) -> None:
    transport.publish("q", [_envelope(str(i)) for i in range(5)])
    transport.publish("q", [_envelope("delayed")], delay=60)
    transport.publish("other", [_envelope("o")])
    assert transport.queue_length("q") == 6
    leased = transport.fetch(["q"], limit=2, timeout=0)
    assert transport.queue_length("q") == 4  # leased messages are not waiting
    assert transport.purge("q") == 4
    assert transport.queue_length("q") == 0
    assert transport.queue_length("other") == 1
    transport.ack(leased)
    transport.declare_queue("new")
    assert transport.purge("new") == 0


def test_components_share_one_file(db_url: str) -> None:
    transport = SqliteTransport(db_url, Config())
    results = SqliteResultStore(db_url, Config())
    schedule = SqliteScheduleStore(db_url, Config())
    transport.publish("q", [_envelope("x")])
    results.store(_record("t1", "SUCCESS"))
    schedule.set_last_run_at("e", 1.0)
    assert transport.queue_length("q") == 1
    assert results.get("t1") is not None
    assert schedule.last_run_at("e") == 1.0
    for component in (transport, results, schedule):
        component.close()


# --- concurrency: real processes and threads on one file -----------------------------------

_PRODUCERS = 3
_PER_PRODUCER = 1000
_THREADS = 2


def _produce(url: str, producer: int) -> None:
    transport = SqliteTransport(url, Config())

    def run(thread: int) -> None:
        ids = [f"{producer}-{thread}-{n}" for n in range(_PER_PRODUCER // _THREADS)]
        for start in range(0, len(ids), 7):  # odd batch sizes interleave the producers
            transport.publish("q", [_envelope(i) for i in ids[start : start + 7]], priority=start % 3)

    _run_threads(run)
    transport.close()


def _consume(url: str, done: Event, out: multiprocessing.Queue[list[tuple[str, int]]]) -> None:
    transport = SqliteTransport(url, Config())
    received: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run(thread: int) -> None:
        idle_after_done = 0
        while idle_after_done < 3:
            deliveries = transport.fetch(["q"], limit=1 + thread * 9, timeout=0.05)
            with lock:
                received.extend((d.envelope.body.decode(), d.delivery_count) for d in deliveries)
            transport.ack(deliveries)
            idle_after_done = idle_after_done + 1 if not deliveries and done.is_set() else 0

    _run_threads(run)
    transport.close()
    out.put(received)


def _run_threads(target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.slow
def test_processes_and_threads_receive_each_message_exactly_once(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    out: multiprocessing.Queue[list[tuple[str, int]]] = ctx.Queue()
    consumers = [ctx.Process(target=_consume, args=(db_url, done, out)) for _ in range(3)]
    producers = [ctx.Process(target=_produce, args=(db_url, n)) for n in range(_PRODUCERS)]
    for process in consumers + producers:
        process.start()
    for process in producers:
        process.join(60)
        assert process.exitcode == 0
    done.set()
    received = [item for _ in consumers for item in out.get(timeout=60)]
    for process in consumers:
        process.join(60)
        assert process.exitcode == 0
    bodies = [body for body, _ in received]
    assert len(bodies) == _PRODUCERS * _PER_PRODUCER
    assert len(set(bodies)) == len(bodies)
    assert {count for _, count in received} == {1}
    check = SqliteTransport(db_url, Config())
    assert check.queue_length("q") == 0
    with check._db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    check.close()


# --- result store --------------------------------------------------------------------------


def _record(task_id: str, state: str, payload: bytes = b"{}") -> ResultRecord:
    return ResultRecord(task_id=task_id, state=state, payload=payload, content_type="application/json")


def test_result_store_get_and_replace(results: SqliteResultStore) -> None:
    assert results.get("t") is None
    results.store(_record("t", "STARTED"))
    assert results.get("t") == _record("t", "STARTED")
    results.store(_record("t", "RETRY", b'{"n": 1}'))
    assert results.get("t") == _record("t", "RETRY", b'{"n": 1}')


@pytest.mark.parametrize("later", ["STARTED", "FAILURE", "RETRY", "SUCCESS"])
def test_success_is_never_overwritten(results: SqliteResultStore, later: str) -> None:
    results.store(_record("t", "SUCCESS", b"42"))
    results.store(_record("t", later, b"late"))
    assert results.get("t") == _record("t", "SUCCESS", b"42")


def test_store_many_saves_each_under_the_same_rule(results: SqliteResultStore, db_url: str) -> None:
    assert isinstance(results, BatchStore)
    results.store(_record("done", "SUCCESS", b"1"))
    results.store_many(
        [_record(f"t{n}", "SUCCESS", b"%d" % n) for n in range(10)] + [_record("done", "FAILURE")]
    )
    assert results.get_many([f"t{n}" for n in range(10)]) == [
        _record(f"t{n}", "SUCCESS", b"%d" % n) for n in range(10)
    ]
    assert results.get("done") == _record("done", "SUCCESS", b"1")
    expiring = SqliteResultStore(db_url, Config(result_expires=0.2))
    expiring.store(_record("old", "STARTED"))
    time.sleep(0.25)
    expiring.store_many([_record(f"new-{n}", "SUCCESS") for n in range(1000)])  # crosses a sweep
    with expiring._db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM results WHERE task_id = 'old'").fetchone() == (0,)
    expiring.close()


def test_wait_returns_when_state_is_reached(results: SqliteResultStore, db_url: str) -> None:
    writer = SqliteResultStore(db_url, Config())
    results.store(_record("t", "STARTED"))
    timer = threading.Timer(0.1, writer.store, (_record("t", "SUCCESS"),))
    timer.start()
    started = time.monotonic()
    record = results.wait("t", frozenset({"SUCCESS", "FAILURE"}), timeout=2)
    assert record is not None
    assert record.state == "SUCCESS"
    assert time.monotonic() - started < 0.1 + 0.25
    timer.join()
    writer.close()


def test_wait_times_out(results: SqliteResultStore) -> None:
    results.store(_record("t", "STARTED"))
    started = time.monotonic()
    assert results.wait("t", frozenset({"SUCCESS"}), timeout=0.1) is None
    assert 0.1 <= time.monotonic() - started < 0.5


def test_forget(results: SqliteResultStore) -> None:
    results.store(_record("t", "SUCCESS"))
    results.forget("t")
    assert results.get("t") is None
    results.store(_record("t", "FAILURE"))
    assert results.get("t") == _record("t", "FAILURE")


def test_results_expire_and_are_swept(db_url: str) -> None:
    store = SqliteResultStore(db_url, Config(result_expires=0.2))
    store.store(_record("old", "SUCCESS"))
    assert store.get("old") is not None
    time.sleep(0.25)
    assert store.get("old") is None
    store.store(_record("old", "STARTED"))  # an expired SUCCESS no longer guards the row
    assert store.get("old") == _record("old", "STARTED")
    time.sleep(0.25)
    for n in range(1000):  # the sweep runs on the first write and then every 1000th
        store.store(_record(f"new-{n}", "SUCCESS"))
    with store._db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM results WHERE task_id = 'old'").fetchone() == (0,)
    store.close()


def test_results_can_be_kept_forever(db_url: str) -> None:
    store = SqliteResultStore(db_url, Config(result_expires=0))
    store.store(_record("t", "SUCCESS"))
    assert store.get("t") is not None
    store.close()


# --- schedule store ------------------------------------------------------------------------


def test_schedule_store_roundtrip(db_url: str) -> None:
    store = SqliteScheduleStore(db_url, Config())
    assert store.last_run_at("nightly") is None
    store.set_last_run_at("nightly", 1700000000.5)
    store.set_last_run_at("nightly", 1700000100.25)
    store.close()
    reopened = SqliteScheduleStore(db_url, Config())
    assert reopened.last_run_at("nightly") == 1700000100.25
    reopened.close()


def test_get_many_returns_records_in_order_with_gaps(tmp_path: Path) -> None:
    store = SqliteResultStore(f"sqlite:///{tmp_path / 'r.sqlite3'}", Config())
    for n in range(3):
        store.store(
            ResultRecord(task_id=f"t{n}", state="SUCCESS", payload=b"%d" % n, content_type="application/json")
        )
    ids = ["t2", "missing", "t0", *[f"x{n}" for n in range(600)], "t1"]
    records = store.get_many(ids)
    assert [r.payload if r else None for r in records[:3]] == [b"2", None, b"0"]
    assert records[-1] is not None and records[-1].payload == b"1"
    assert all(r is None for r in records[3:-1])
    store.close()


def test_broadcast_reaches_every_subscriber_after_it_subscribed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    sender, receiver = SqliteTransport(url, Config()), SqliteTransport(url, Config())
    sender.broadcast("ch", Envelope(body=b"before", content_type="text/plain"))
    first, second = receiver.subscribe("ch"), sender.subscribe("ch")
    for n in range(3):
        sender.broadcast("ch", Envelope(body=b"m%d" % n, content_type="text/plain"))
    sender.broadcast("other", Envelope(body=b"elsewhere", content_type="text/plain"))
    assert [e.body for e in first.get(1.0)] == [b"m0", b"m1", b"m2"]
    assert [e.body for e in second.get(1.0)] == [b"m0", b"m1", b"m2"]
    assert first.get(0.05) == []
    sender.close()
    receiver.close()


@pytest.mark.parametrize("column", ["headers", "properties"])
def test_a_row_that_is_not_json_is_dead_lettered_and_the_rest_run(
    transport: SqliteTransport, db_url: str, column: str
) -> None:
    transport.publish("celery", [_envelope(f"good {i}") for i in range(3)])
    bad = {"headers": "'{}'", "properties": "'{}'", column: "'not json {'"}
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "INSERT INTO messages(queue,priority,visible_at,body,content_type,content_encoding,"
            "headers,properties) VALUES('celery',0,0,x'5b5b305d2c7b7d2c7b7d5d','application/json',"
            f"'utf-8',{bad['headers']},{bad['properties']})"
        )
    transport.publish("celery", [_envelope(f"good {i}") for i in range(3, 5)])
    assert transport.queue_length("celery") == 6
    deliveries = transport.fetch(["celery"], limit=10, timeout=0)
    assert sorted(_bodies(deliveries)) == [f"good {i}" for i in range(5)]
    assert transport.queue_length("celery") == 0
    [dead] = transport.dead_letters()
    assert f"the {column} column is not JSON" in dead.reason
    assert dead.envelope.body == b"[[0],{},{}]"
    assert getattr(dead.envelope, column) == {"raw": "not json {"}
    transport.ack(deliveries)
    assert transport.fetch(["celery"], limit=10, timeout=0) == []
