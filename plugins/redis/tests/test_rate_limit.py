"""``global_rate_limit`` on Redis: slots booked on the server's clock, shared by every worker."""

from __future__ import annotations

import threading
import time

import pytest

from celeriac import Celeriac
from celeriac.plugin import SharedRateLimiter
from celeriac.testing import worker_thread
from celeriac_redis import RedisResultStore

from .conftest import make_config


def test_slots_are_booked_in_order_and_a_far_one_books_nothing(redis_url: str, prefix: str) -> None:
    store = RedisResultStore(redis_url, make_config(prefix))
    try:
        assert isinstance(store, SharedRateLimiter)
        waits = [store.reserve_slot("k", 0.5, 1.0) for _ in range(4)]
        assert waits[0] == 0.0
        assert waits[1:3] == pytest.approx([0.5, 1.0], abs=0.05)
        assert waits[3] == pytest.approx(1.5, abs=0.05)  # over max_wait: told, not booked
        assert store.reserve_slot("k", 0.5, 2.0) == pytest.approx(1.5, abs=0.05)
        assert store.reserve_slot("other", 0.5, 1.0) == 0.0  # one limit per key
    finally:
        store.close()


def test_two_workers_share_one_limit_and_run_everything(redis_url: str, prefix: str) -> None:
    starts: list[float] = []
    lock = threading.Lock()
    apps = []
    for _ in range(2):
        app = Celeriac(
            "tests",
            broker=redis_url,
            env={},
            config=False,
            redis={"key_prefix": prefix, "result_key_prefix": prefix},
        )

        @app.task(name="t.limited", global_rate_limit="5/s")
        def limited(i: int) -> int:
            with lock:
                starts.append(time.time())
            return i

        apps.append(app)
    first, second = apps
    try:
        # Each worker has a queue of its own, so both run tasks and share only the limit.
        with (
            worker_thread(first, concurrency=4, queues=["a"]),
            worker_thread(second, concurrency=4, queues=["b"]),
        ):
            limited = first.tasks["t.limited"]
            results = [limited.apply_async((i,), queue="ab"[i % 2]) for i in range(12)]
            assert sorted(r.get(timeout=30) for r in results) == list(range(12))
    finally:
        for app in apps:
            app.close()
    # 5/s across both workers: no six starts within a second. Judged over windows of six,
    # not gap by gap, so that a thread scheduled late under load (which shortens the gap after
    # it) does not fail the test; two workers each taking 5/s would put six starts in 0.5 s.
    ordered = sorted(starts)
    windows = [ordered[i + 5] - ordered[i] for i in range(len(ordered) - 5)]
    assert min(windows) >= 1.0 - 0.2, windows
