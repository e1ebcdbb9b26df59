"""Beat and a real worker on one SQLite file: tasks sent on schedule are run."""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import ClassVar

import pytest
from attrs import frozen

from celeriac import Celeriac
from celeriac._beat.beat import Beat
from celeriac._worker.beat import BeatStep
from celeriac.plugin import Config
from celeriac.plugin import StepContext
from celeriac.plugin import hookimpl
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

pytestmark = pytest.mark.integration
MakeApp = Callable[..., Celeriac]


def _project(make_app: MakeApp, tmp_path: Path, **settings: Any) -> tuple[Celeriac, list[str]]:
    app = make_app(
        '[beat.schedule.tick]\ntask = "proj.tick"\nevery = "1s"\n',
        broker=f"sqlite:///{tmp_path}/broker.sqlite3",
        **settings,
    )
    seen: list[str] = []

    @app.task(name="proj.tick", bind=True)
    def tick(self: Any) -> str:
        run_at: str = self.request.message.extra_headers["beat_run_at"]
        seen.append(run_at)
        return run_at

    return app, seen


@contextlib.contextmanager
def _beat_thread(beat: Beat) -> Iterator[Beat]:
    stop = threading.Event()
    thread = threading.Thread(target=beat.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield beat
    finally:
        stop.set()
        thread.join(timeout=10)


def test_beat_sends_and_a_worker_runs(make_app: MakeApp, tmp_path: Path) -> None:
    app, seen = _project(make_app, tmp_path)
    with worker_thread(app, concurrency=2), _beat_thread(Beat(app)) as beat:
        wait_for(lambda: len(seen) >= 3, 10, "three runs")
    assert beat.store_url == app.config.broker  # the broker's file serves as the store
    assert len(seen) == len(set(seen))


def test_beat_sends_and_a_worker_runs_on_redis(make_app: MakeApp, redis_url: str) -> None:
    import redis

    prefix = f"celeriac-test-{secrets.token_hex(6)}:"
    app = make_app(
        '[beat.schedule.tick]\ntask = "proj.tick"\nevery = "1s"\n',
        broker=redis_url,
        redis={"key_prefix": prefix, "result_key_prefix": prefix},
    )
    seen: list[str] = []

    @app.task(name="proj.tick")
    def tick() -> None:
        seen.append("tick")

    try:
        with worker_thread(app, concurrency=2), _beat_thread(Beat(app)) as beat:
            wait_for(lambda: len(seen) >= 2, 10, "two runs")
        assert beat.store_url == redis_url  # the broker's server keeps the last runs and the lock
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_last_run_persists_across_a_beat_restart(make_app: MakeApp, tmp_path: Path) -> None:
    app, seen = _project(make_app, tmp_path)
    with worker_thread(app):
        with _beat_thread(Beat(app)):
            wait_for(lambda: len(seen) >= 2, 10, "two runs")
        count = len(seen)
        with _beat_thread(Beat(app)):
            wait_for(lambda: len(seen) >= count + 2, 10, "two more runs")
        wait_for(lambda: len(set(seen)) == len(seen), 5, "all distinct")
    ordered = sorted(seen)
    # One second apart throughout: the restart neither repeated nor restarted the cadence
    # (at most the seconds the restart took were caught up).
    from datetime import datetime

    gaps = {
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in itertools.pairwise(ordered)
    }
    assert gaps == {1.0}


@frozen
class _AlwaysBeat:
    """The embedded step, enabled whatever ``worker.beat`` says (for kernels without it)."""

    name: ClassVar[str] = "test.beat"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection"})

    def enabled(self, config: Config) -> bool:
        return True

    def run(self, ctx: StepContext) -> contextlib.AbstractContextManager[None]:
        return BeatStep().run(ctx)


class _AlwaysBeatPlugin:
    @hookimpl
    def celeriac_add_bootsteps(self) -> list[_AlwaysBeat]:
        return [_AlwaysBeat()]


def test_embedded_step_runs_beat_inside_the_worker(make_app: MakeApp, tmp_path: Path) -> None:
    app, seen = _project(make_app, tmp_path, plugins=[_AlwaysBeatPlugin()])
    with worker_thread(app):
        wait_for(lambda: len(seen) >= 2, 10, "two runs from the embedded beat")
    assert not BeatStep().enabled(app.config)  # off unless asked for (-B)


def test_worker_with_beat_enabled(make_app: MakeApp, tmp_path: Path) -> None:
    app, seen = _project(make_app, tmp_path)
    with worker_thread(app, beat=True) as worker:
        wait_for(lambda: len(seen) >= 2, 10, "two runs from worker -B")
    assert "kernel.beat" in worker.blueprint().steps
