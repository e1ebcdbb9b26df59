"""The SQLite schedule store's leader lock, between stores and between processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.plugin import BeatLock
from celeriac.plugin import Config
from celeriac_sqlite import SqliteScheduleStore


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'beat.sqlite3'}"


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[SqliteScheduleStore, SqliteScheduleStore]]:
    pair = SqliteScheduleStore(db_url, Config()), SqliteScheduleStore(db_url, Config())
    yield pair
    for store in pair:
        store.close()


def test_is_a_beat_lock(stores: tuple[SqliteScheduleStore, SqliteScheduleStore]) -> None:
    assert isinstance(stores[0], BeatLock)


def test_one_holder_at_a_time(stores: tuple[SqliteScheduleStore, SqliteScheduleStore]) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 5)
    assert not b.acquire("beat", "b", 5)
    assert a.acquire("beat", "a", 5)  # taking it again extends it
    assert a.renew("beat", "a", 5)
    assert not b.renew("beat", "b", 5)
    assert b.acquire("other", "b", 5)  # another name is another lock


def test_an_expired_lease_can_be_taken(stores: tuple[SqliteScheduleStore, SqliteScheduleStore]) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 0.1)
    time.sleep(0.15)
    assert not a.renew("beat", "a", 5)  # too late to renew
    assert b.acquire("beat", "b", 5)
    assert not a.acquire("beat", "a", 5)


def test_release_only_by_the_owner(stores: tuple[SqliteScheduleStore, SqliteScheduleStore]) -> None:
    a, b = stores
    assert a.acquire("beat", "a", 60)
    b.release("beat", "b")
    assert not b.acquire("beat", "b", 60)
    a.release("beat", "a")
    assert b.acquire("beat", "b", 60)


def test_claims_are_fenced_by_the_lease(stores: tuple[SqliteScheduleStore, SqliteScheduleStore]) -> None:
    a, b = stores
    assert a.claimed_at("e") is None
    assert a.acquire("beat", "a", 0.1)
    assert a.claim("beat", "a", "e", 10.0)
    assert not b.claim("beat", "b", "e", 20.0)  # not the holder
    assert b.claimed_at("e") == 10.0
    time.sleep(0.15)
    assert not a.claim("beat", "a", "e", 30.0)  # lease over: fenced off
    assert a.claimed_at("e") == 10.0
    assert b.acquire("beat", "b", 5)
    assert b.claim("beat", "b", "e", 40.0)
    assert a.claimed_at("e") == 40.0


def test_an_older_file_gains_the_lock_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE beat_schedule (entry TEXT PRIMARY KEY, last_run_at REAL NOT NULL)")
        conn.execute("INSERT INTO beat_schedule VALUES ('nightly', 1.5)")
    conn.close()
    store = SqliteScheduleStore(f"sqlite:///{path}", Config())
    assert store.last_run_at("nightly") == 1.5
    assert store.acquire("beat", "a", 5)
    store.close()


def _contend(url: str, owner: str, results: multiprocessing.Queue[str]) -> None:
    store = SqliteScheduleStore(url, Config())
    if store.acquire("beat", owner, 30):
        results.put(owner)
    store.close()


def test_processes_racing_for_the_lock_elect_one(db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()
    processes = [context.Process(target=_contend, args=(db_url, f"p{n}", results)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=30)
    winners = []
    while not results.empty():
        winners.append(results.get(timeout=1))
    assert len(winners) == 1
