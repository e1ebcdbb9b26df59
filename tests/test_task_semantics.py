"""Task semantics on a real worker: retries, rate limits, acks, routing, states, typed arguments."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import MaxRetriesExceededError
from celeriac import TaskCall
from celeriac import states
from celeriac import testing
from celeriac._model.arguments import TaskArguments
from celeriac._model.ratelimit import TokenBucket
from celeriac._model.ratelimit import parse_rate
from celeriac.plugin import TaskOptions
from celeriac.plugin import retry_delay
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

AppFactory = Callable[..., Celeriac]


@pytest.fixture(params=["memory", "sqlite"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AppFactory:
    """Apps on the in-memory broker, and on a real SQLite file: every test runs on both."""
    broker = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'broker.sqlite3'}"

    def factory(config: Path | bool = False, **settings: Any) -> Celeriac:
        return Celeriac("tests", broker=broker, plugins=[testing], env={}, config=config, **settings)

    return factory


# --- retries ---------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_below() -> None:
    fixed = TaskOptions(retry_backoff=2, retry_backoff_max=30, retry_jitter=False)
    assert [retry_delay(fixed, n) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    jittered = TaskOptions(retry_backoff=True, retry_backoff_max=600)
    rng = random.Random(1)
    delays = [retry_delay(jittered, 3, rng) for _ in range(50)]
    assert all(0 <= d <= 8 for d in delays)
    assert len(set(delays)) > 1
    assert retry_delay(TaskOptions(default_retry_delay=7), 5) == 7


def test_dont_autoretry_for_wins_and_max_retries_none_is_unlimited(make_app: AppFactory) -> None:
    app = make_app()
    calls: list[int] = []

    @app.task(autoretry_for=(OSError,), dont_autoretry_for=(FileNotFoundError,), default_retry_delay=0)
    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("gone")

    @app.task(bind=True, max_retries=None)
    def stubborn(self: TaskCall) -> int:
        assert self.request is not None
        if self.request.retries < 6:
            raise self.retry(countdown=0)
        return self.request.retries

    with worker_thread(app):
        with pytest.raises(FileNotFoundError):
            missing.delay().get(timeout=5)
        assert stubborn.delay().get(timeout=10) == 6
    assert calls == [1]


def test_max_retries_exceeded_carries_the_last_exception(make_app: AppFactory) -> None:
    app = make_app(task_always_eager=True)

    @app.task(bind=True, max_retries=0)
    def once(self: TaskCall) -> None:
        raise self.retry(exc=KeyError("k"))

    with pytest.raises(MaxRetriesExceededError) as info:
        once.delay()
    assert isinstance(info.value.exc, KeyError)
    assert info.value.__cause__ is info.value.exc


def test_toml_max_retries_minus_one_means_unlimited(make_app: AppFactory, tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[tasks."tests.t"]\nmax_retries = -1\nrate_limit = "5/m"\n')
    app = make_app(file)

    @app.task(name="tests.t")
    def t() -> None:
        pass

    assert t.options.max_retries is None
    assert t.options.rate_limit == "5/m"


# --- rate limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "per_second"), [("10/s", 10), ("120/m", 2), ("3600/h", 1), ("4", 4), (2.5, 2.5)]
)
def test_rate_strings(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


def test_bad_rate_limit_is_a_clear_error(make_app: AppFactory) -> None:
    app = make_app()
    with pytest.raises(ConfigError, match=r"rate limit 'ten per second' is not of the form N/s"):

        @app.task(rate_limit="ten per second")
        def t() -> None:
            pass


def test_token_bucket_spaces_reservations() -> None:
    bucket = TokenBucket(rate=10)
    waits = [bucket.reserve() for _ in range(4)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


def test_rate_limit_delays_but_runs_everything(make_app: AppFactory) -> None:
    app = make_app()
    stamps: list[float] = []

    @app.task(rate_limit="20/s")
    def tick() -> None:
        stamps.append(time.monotonic())

    with worker_thread(app, concurrency=4):
        for result in [tick.delay() for _ in range(10)]:
            result.get(timeout=10)
    assert len(stamps) == 10
    assert max(stamps) - min(stamps) >= 0.4  # nine intervals of 50 ms, give or take the first


def test_a_long_rate_wait_goes_back_to_the_broker(make_app: AppFactory) -> None:
    app = make_app()
    ran = threading.Event()

    @app.task(rate_limit="1/m")
    def slow() -> None:
        ran.set()

    first, second = slow.delay(), slow.delay()
    with worker_thread(app) as worker:
        first.get(timeout=5)
        # The second one waits in the broker (delayed about a minute), not in the worker:
        # taken with the first, then handed back.
        wait_for(
            lambda: (a := worker.activity()) is not None and a.taken >= 2 and a.held == 0,
            10,
            "the second handed back to the broker",
        )
        assert app.transport.queue_length("celery") == 1
        assert second.state == states.PENDING


# --- acknowledgement -------------------------------------------------------------------


def test_failure_is_dead_lettered_when_acks_on_failure_is_off(make_app: AppFactory) -> None:
    app = make_app()

    @app.task(acks_on_failure_or_timeout=False)
    def broken() -> None:
        raise RuntimeError("bad data")

    with worker_thread(app):
        with pytest.raises(RuntimeError):
            broken.delay().get(timeout=5)
        wait_for(app.transport.dead_letters, 5, "a dead letter")
    [letter] = app.transport.dead_letters()
    assert "RuntimeError: bad data" in letter.reason


# --- routing ---------------------------------------------------------------------------


def test_task_routes_glob_and_precedence(make_app: AppFactory, tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[task_routes]\n"reports.*" = "slow"\n"*" = "fallback"\n[tasks."reports.pinned"]\nqueue = "pinned"\n'
    )
    app = make_app(file)

    @app.task(name="reports.monthly")
    def monthly() -> None: ...

    @app.task(name="reports.pinned")
    def pinned() -> None: ...

    @app.task(name="mail.send", queue="mail")
    def send() -> None: ...

    assert monthly.options.queue == "slow"
    assert pinned.options.queue == "pinned"
    assert send.options.queue == "mail"
    monthly.apply_async(queue="override")
    assert app.transport.queue_length("override") == 1
    app.send_task("other.thing")
    assert app.transport.queue_length("fallback") == 1


# --- states ----------------------------------------------------------------------------


def test_track_started_and_progress_states(make_app: AppFactory) -> None:
    app = make_app()
    go_on = threading.Event()
    reported = threading.Event()

    @app.task(bind=True, track_started=True)
    def job(self: TaskCall) -> str:
        reported.wait(5)
        self.update_state(state="PROGRESS", meta={"done": 50})
        go_on.wait(5)
        return "finished"

    with worker_thread(app):
        result = job.delay()
        wait_for(lambda: result.state == states.STARTED, 5, "the STARTED state")
        reported.set()
        wait_for(lambda: result.state == "PROGRESS", 5, "the PROGRESS state")
        assert result.info == {"done": 50}
        go_on.set()
        assert result.get(timeout=5) == "finished"


# --- typed arguments -------------------------------------------------------------------


@frozen
class Point:
    x: int
    y: int


def test_wrong_arguments_fail_at_the_caller(make_app: AppFactory) -> None:
    app = make_app()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match=r"add\(x: int, y: int\).*missing a required argument: 'y'"):
        add.delay(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        add.apply_async((1, 2), {"z": 3})
    assert app.transport.queue_length("celery") == 0


def _noop0() -> None: ...
def _pos2(x, y): ...  # type: ignore[no-untyped-def]
def _defaults(x, y=1, z=2): ...  # type: ignore[no-untyped-def]
def _only(x, /, y=1): ...  # type: ignore[no-untyped-def]
def _kwonly(x, *, y): ...  # type: ignore[no-untyped-def]
def _kwonly_default(x, *, y=1): ...  # type: ignore[no-untyped-def]
def _star(x, *args): ...  # type: ignore[no-untyped-def]
def _starstar(x, **kwargs): ...  # type: ignore[no-untyped-def]
def _bound(self, x): ...  # type: ignore[no-untyped-def]


@pytest.mark.parametrize(
    ("fn", "bind"),
    [
        (_noop0, False),
        (_pos2, False),
        (_defaults, False),
        (_only, False),
        (_kwonly, False),
        (_kwonly_default, False),
        (_star, False),
        (_starstar, False),
        (_bound, True),
    ],
)
def test_the_argument_check_agrees_with_binding(fn: Callable[..., Any], bind: bool) -> None:
    # check() skips binding when positional arguments alone plainly fit; it must fail and
    # pass exactly where Signature.bind does.
    arguments = TaskArguments(fn, bind=bind)
    for count in range(5):
        for kwargs in ({}, {"y": 1}, {"z": 1}):
            args = tuple(range(count))
            try:
                arguments.signature.bind(*args, **kwargs)
                fits = True
            except TypeError:
                fits = False
            if fits:
                arguments.check("t", args, kwargs)
            else:
                with pytest.raises(TypeError, match="task t"):
                    arguments.check("t", args, kwargs)


def test_attrs_arguments_cross_the_wire(make_app: AppFactory) -> None:
    app = make_app()

    @app.task
    def norm(p: Point, scale: int = 1) -> int:
        assert isinstance(p, Point)
        return (p.x + p.y) * scale

    result = norm.delay(Point(2, 3), scale=2)
    [delivery] = app.transport.fetch(["celery"], 1, 1.0)
    assert app.codec.decode_task(delivery.envelope).args == ({"x": 2, "y": 3},)
    app.transport.reject([delivery], requeue=True)
    with worker_thread(app):
        assert result.get(timeout=5) == 10


def test_an_eager_result_reads_like_an_async_one(make_app: AppFactory) -> None:
    app = make_app(task_always_eager=True)

    @app.task
    def double(x: int) -> int:
        return x * 2

    result = double.delay(4)
    assert result.children == []
    assert [value for _, value in result.collect()] == [8]


def test_task_defaults_apply_to_every_task_under_code_and_per_task_tables(
    make_app: AppFactory, tmp_path: Path
) -> None:
    config = tmp_path / "defaults.toml"
    config.write_text(
        '[task_defaults]\ntime_limit = 60\nmax_retries = -1\ntrack_started = true\nrate_limit = "10/s"\n'
        '[tasks."t.strict"]\nmax_retries = 1\n'
    )
    app = make_app(config=config)

    @app.task(name="t.plain")
    def plain() -> None:
        """Takes every default."""

    @app.task(name="t.coded", time_limit=5)
    def coded() -> None:
        """Code wins over task_defaults."""

    @app.task(name="t.strict", max_retries=3)
    def strict() -> None:
        """[tasks."name"] wins over code."""

    assert (plain.options.time_limit, plain.options.max_retries) == (60, None)
    assert plain.options.track_started and plain.options.rate_limit == "10/s"
    assert coded.options.time_limit == 5
    assert strict.options.max_retries == 1


def test_where_tasks_go_is_not_a_default(make_app: AppFactory, tmp_path: Path) -> None:
    config = tmp_path / "defaults.toml"
    config.write_text('[task_defaults]\nqueue = "everything"\n')
    with pytest.raises(ConfigError, match=r"task_defaults.queue = 'everything'.*default_queue"):
        make_app(config=config)  # refused as the app registers its first (built-in) task
