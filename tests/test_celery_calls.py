"""Celery 5's per-call options and canvas spellings: each mapped onto celeriac or refused saying why."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import Group
from celeriac import TaskCall
from celeriac import chord
from celeriac import xmap
from celeriac import xstarmap
from celeriac._client.execution import format_runtime
from celeriac.testing import join
from celeriac.testing import worker_thread


@pytest.fixture
def app() -> Iterator[Celeriac]:
    instance = Celeriac("tests", env={}, config=False, broker="memory://")
    yield instance
    instance.close()


def test_per_call_time_limits_shadow_and_reprs_reach_the_worker(app: Celeriac) -> None:
    @app.task(bind=True, time_limit=100, soft_time_limit=90)
    def seen(self: TaskCall, secret: str) -> list[Any]:
        assert self.request is not None
        message = self.request.message
        return [list(message.timelimit), message.shadow, message.argsrepr, message.kwargsrepr]

    with worker_thread(app, pool="threads") as worker:
        called = seen.apply_async(
            ("s3cr3t",), time_limit=5, soft_time_limit=4, shadow="seen-for-logs", argsrepr="('***',)"
        )
        default = seen.apply_async(("x",))
        join(worker)
    assert called.get(timeout=5) == [[5, 4], "seen-for-logs", "('***',)", "{}"]
    assert default.get(timeout=5)[0] == [100, 90]


def test_a_per_call_soft_time_limit_interrupts_the_task(app: Celeriac) -> None:
    import asyncio

    from celeriac import SoftTimeLimitExceededError

    @app.task(soft_time_limit=60)
    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except SoftTimeLimitExceededError:
            return "interrupted"
        return "not interrupted"

    # The asyncio pool enforces soft limits (threads cannot: docs/pools.md).
    with worker_thread(app, pool="asyncio") as worker:
        result = slow.apply_async(soft_time_limit=0.3)
        join(worker)
    assert result.get(timeout=5) == "interrupted"


def test_link_and_link_error_per_call(app: Celeriac) -> None:
    seen: list[Any] = []

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fail() -> None:
        raise ValueError("boom")

    @app.task
    def record(value: Any) -> None:
        seen.append(value)

    @app.task
    def record_error(task_id: str) -> None:
        seen.append(("failed", task_id))

    with worker_thread(app, pool="threads") as worker:
        ok = add.apply_async((2, 3), link=record.s())
        bad = fail.apply_async(link_error=[record_error.s()])
        by_name = app.send_task(add.name, (1, 1), link=record.s(), ignore_result=True)
        join(worker)
    assert ok.get(timeout=5) == 5
    assert sorted(map(str, seen)) == sorted(["5", "2", str(("failed", bad.id))])
    assert by_name.state == "PENDING"  # ignore_result: nothing stored


def test_celery_options_celeriac_does_not_take_are_refused_with_the_reason(app: Celeriac) -> None:
    @app.task
    def noop() -> None: ...

    with pytest.raises(TypeError, match=r"retry_policy= \(publishing is retried by the transport"):
        noop.apply_async(retry_policy={"max_retries": 3})
    with pytest.raises(TypeError, match=r"compression= \(compression is chosen for the app"):
        noop.apply_async(compression="zlib")
    with pytest.raises(TypeError, match=r"colour= \(not an option of apply_async\)"):
        noop.apply_async(colour="red")


def test_on_error_is_link_error(app: Celeriac) -> None:
    @app.task
    def a() -> None: ...

    @app.task
    def b(task_id: str) -> None: ...

    assert a.s().on_error(b.s()) == a.s().link_error(b.s())


def test_chunks_group_xmap_and_xstarmap_run(app: Celeriac) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    def total(parts: list[list[int]]) -> int:
        return sum(sum(part) for part in parts)

    pairs = [(i, i) for i in range(10)]
    grouped = add.chunks(pairs, 3).group()
    assert type(grouped) is Group
    assert len(grouped) == 4
    with worker_thread(app, pool="threads", concurrency=2) as worker:
        in_chord = chord(add.chunks(pairs, 3).group(), total.s()).apply_async()
        mapped = xmap(double.s(), [1, 2, 3]).apply_async()
        starmapped = xstarmap(add.s(), [(1, 2), (3, 4)]).apply_async()
        join(worker)
    assert in_chord.get(timeout=5) == 90
    assert mapped.get(timeout=5) == [2, 4, 6]
    assert starmapped.get(timeout=5) == [3, 7]


def test_retry_log_says_when_and_fast_tasks_show_microseconds(
    app: Celeriac, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(bind=True, max_retries=1, name="tests.again")
    def again(self: TaskCall) -> str:
        assert self.request is not None
        if self.request.retries == 0:
            raise self.retry(countdown=0.2, exc=KeyError("first"))
        return "done"

    with (
        caplog.at_level(logging.INFO, logger="celeriac.worker"),
        worker_thread(app, pool="threads") as worker,
    ):
        result = again.delay()
        join(worker)
    assert result.get(timeout=5) == "done"
    assert f"Task tests.again[{result.id}] will retry in 0.2s: KeyError('first')" in caplog.text
    assert f"Task tests.again[{result.id}] succeeded in " in caplog.text
    assert "0.0000s" not in caplog.text
    assert format_runtime(0.0000421) == "42\N{MICRO SIGN}s"
    assert format_runtime(1.5) == "1.500s"


def test_celerys_backend_and_include_keywords() -> None:
    from celeriac import ConfigError

    app = Celeriac("proj", env={}, config=False, broker="memory://", backend="memory://", include=["json"])
    assert app.result_store_url == "memory://"
    assert app.config.imports == ("json",) or list(app.config.imports) == ["json"]
    app.close()
    with pytest.raises(ConfigError, match="give result_store or backend"):
        Celeriac("proj", env={}, config=False, result_store="memory://", backend="memory://")
