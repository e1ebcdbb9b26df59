"""``global_rate_limit``: one limit for all workers, booked in a store they share (SQLite
here; Redis in plugins/redis/tests)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import testing
from celeriac.testing import worker_thread


def make(url: str) -> tuple[Celeriac, list[float]]:
    app = Celeriac("tests", broker=url, plugins=[testing], env={}, config=False)
    starts: list[float] = []
    lock = threading.Lock()

    @app.task(name="t.limited", global_rate_limit="5/s")
    def limited(i: int) -> int:
        with lock:
            starts.append(time.time())
        return i

    return app, starts


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"


def test_two_workers_share_one_limit_and_run_everything(sqlite_url: str) -> None:
    first, first_starts = make(sqlite_url)
    second, second_starts = make(sqlite_url)
    try:
        # Each worker has a queue of its own, so both run tasks and share only the limit.
        with (
            worker_thread(first, concurrency=4, queues=["a"]),
            worker_thread(second, concurrency=4, queues=["b"]),
        ):
            limited = first.tasks["t.limited"]
            results = [limited.apply_async((i,), queue="ab"[i % 2]) for i in range(12)]
            assert sorted(r.get(timeout=30) for r in results) == list(range(12))  # delayed, never dropped
    finally:
        first.close()
        second.close()
    assert len(first_starts) == len(second_starts) == 6
    starts = sorted(first_starts + second_starts)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.2 - 0.02, gaps  # 5/s across both workers, not 5/s each


def test_a_broker_that_cannot_share_a_limit_refuses_to_start() -> None:
    app, _ = make("memory://")
    try:
        with pytest.raises(ConfigError, match=r"task 't.limited' has global_rate_limit = '5/s'.*Redis"):
            app.worker().run()
    finally:
        app.close()


def test_a_bad_shared_rate_names_the_key() -> None:
    app = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=False)
    with pytest.raises(ConfigError, match=r"task 't.bad': global_rate_limit: rate limit 'often'"):
        app.task(name="t.bad", global_rate_limit="often")(lambda: None)
    app.close()


def test_the_store_books_slots_in_order_and_a_far_slot_books_nothing(sqlite_url: str) -> None:
    app, _ = make(sqlite_url)
    store = app.result_store
    try:
        waits = [store.reserve_slot("k", 0.5, 1.0) for _ in range(4)]  # type: ignore[attr-defined]
        assert waits[0] == 0.0
        assert waits[1:3] == pytest.approx([0.5, 1.0], abs=0.05)
        assert waits[3] == pytest.approx(1.5, abs=0.05)  # over max_wait: told, not booked
        assert store.reserve_slot("k", 0.5, 2.0) == pytest.approx(1.5, abs=0.05)  # type: ignore[attr-defined]
    finally:
        app.close()
