"""One app on every execution pool, in real worker processes on SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from celeriac import Celeriac

from .conftest import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.integration]
StartWorker = Callable[..., WorkerProcess]


@pytest.mark.parametrize("pool", ["prefork", "asyncio", "threads", "solo", "gevent"])
def test_the_same_app_runs_on_each_pool(client: Celeriac, start_worker: StartWorker, pool: str) -> None:
    if pool == "gevent":
        pytest.importorskip("celeriac_gevent")
    launcher = "celeriac_gevent" if pool == "gevent" else "celeriac"
    start_worker("-c", "4", pool=pool, launcher=launcher)
    results = [client.send_task("proj.add", (n, n)) for n in range(50)]
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(50)]


def test_asyncio_runs_a_hundred_sleeping_tasks_at_once(client: Celeriac, start_worker: StartWorker) -> None:
    start_worker("-c", "1000", pool="asyncio")
    client.send_task("proj.nap", (0,)).get(timeout=10)
    started = time.monotonic()
    results = [client.send_task("proj.nap", (1,)) for _ in range(100)]
    assert all(r.get(timeout=20) == 1 for r in results)
    assert time.monotonic() - started < 3  # about 1 s, plus SQLite round trips
