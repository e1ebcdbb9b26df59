"""Plugin wiring, configuration, and an app with an in-process worker on a real Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pluggy
import pytest

import celeriac_json
import celeriac_redis
import celeriac_threads
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import states
from celeriac.plugin import Config
from celeriac.plugin import hookspecs
from celeriac.testing import worker_thread
from celeriac_redis import RedisConfig
from celeriac_redis import RedisResultStore
from celeriac_redis import RedisScheduleStore
from celeriac_redis import RedisTransport

#: Only the plugins these tests need, whatever else is installed.
PLUGINS = {"autoload_plugins": False, "plugins": [celeriac_redis, celeriac_json, celeriac_threads]}


def test_entry_point_is_registered() -> None:
    assert "redis" in {ep.name for ep in entry_points(group="celeriac.plugins")}


def test_hooks_offer_the_redis_schemes_and_config_section() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(celeriac_redis)
    pm.check_pending()
    for hook in (pm.hook.celeriac_add_transports, pm.hook.celeriac_add_result_stores):
        [[spec]] = hook()
        assert spec.schemes == (
            *("redis", "rediss", "redis+socket"),
            *("redis+sentinel", "rediss+sentinel", "sentinel"),
            *("redis+cluster", "rediss+cluster"),
        )
    [[schedule_spec]] = pm.hook.celeriac_add_schedule_stores()
    assert schedule_spec.factory is RedisScheduleStore
    [[section]] = pm.hook.celeriac_add_config_sections()
    assert (section.name, section.cls) == ("redis", RedisConfig)


def test_import_and_construction_neither_import_redis_nor_connect() -> None:
    code = (
        "import sys, celeriac_redis as r; from celeriac._model.config import Config;"
        "assert 'redis' not in sys.modules, 'import pulled in redis';"
        "r.RedisTransport('redis://127.0.0.1:1/0', Config());"
        "r.RedisResultStore('redis://127.0.0.1:1/0', Config());"
        "r.RedisScheduleStore('redis://127.0.0.1:1/0', Config())"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


@pytest.mark.parametrize("url", ["http://x", "redis://host:notaport/0"])
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="Redis URL"):
        RedisTransport(url, Config())


def test_config_section_from_toml_and_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "celeriac.toml").write_text(
        '[redis]\nlayout = "kombu"\npriority_steps = [5, 0, 9]\nsocket_timeout = 3\n'
    )
    app = Celeriac("t", config=tmp_path / "celeriac.toml", env={}, **PLUGINS)
    settings = app.config.section("redis", RedisConfig)
    assert (settings.layout, settings.priority_steps, settings.socket_timeout) == ("kombu", (0, 5, 9), 3.0)
    (tmp_path / "celeriac.toml").write_text('[redis]\nlayuot = "kombu"\n')
    with pytest.raises(ConfigError, match="layuot"):
        Celeriac("t", config=tmp_path / "celeriac.toml", env={}, **PLUGINS)
    (tmp_path / "celeriac.toml").write_text('[redis]\nlayout = "lists"\n')
    with pytest.raises(ConfigError, match="layout"):
        Celeriac("t", config=tmp_path / "celeriac.toml", env={}, **PLUGINS)


def test_layout_picks_the_transport(redis_url: str, prefix: str) -> None:
    app = Celeriac("t", broker=redis_url, config=False, env={}, redis={"layout": "kombu"}, **PLUGINS)
    assert type(app.transport).__name__ == "KombuRedisTransport"
    app.close()
    app = Celeriac("t", broker=redis_url, config=False, env={}, **PLUGINS)
    assert isinstance(app.transport, RedisTransport)
    assert isinstance(app.result_store, RedisResultStore)  # the broker's URL by default
    app.close()


@pytest.fixture
def app(redis_url: str, prefix: str) -> Iterator[Celeriac]:
    instance = Celeriac(
        "t",
        broker=redis_url,
        config=False,
        env={},
        visibility_timeout=2.0,
        redis={"key_prefix": prefix, "result_key_prefix": prefix},
        **PLUGINS,
    )
    yield instance
    instance.close()


def test_tasks_run_and_results_come_back(app: Celeriac) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fail() -> None:
        raise ValueError("nope")

    with worker_thread(app, concurrency=4):
        results = [add.delay(n, n) for n in range(50)]
        assert [r.get(timeout=10) for r in results] == [2 * n for n in range(50)]
        failed = fail.delay()
        with pytest.raises(ValueError, match="nope"):
            failed.get(timeout=10)
        assert failed.state == states.FAILURE
        assert "ValueError" in (failed.traceback or "")
        later = add.apply_async((1, 2), countdown=0.3, priority=9)
        assert later.get(timeout=10) == 3
    assert app.transport.queue_length("celery") == 0


def test_bad_input_is_dead_lettered_and_the_worker_goes_on(app: Celeriac) -> None:
    from celeriac.plugin import Envelope

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    transport = app.transport
    bad = [
        Envelope(body=b'{"not": "a task"}', content_type="application/json", headers={}),
        Envelope(
            body=b"\x80pickle",
            content_type="application/x-python-serialize",
            headers={"id": "p", "task": "t.add"},
        ),
        Envelope(body=b"{not json", content_type="application/json", headers={"id": "j", "task": "t.add"}),
        Envelope(
            body=b"[[1, 2], {}, {}]", content_type="application/json", headers={"id": "u", "task": "t.nope"}
        ),
    ]
    transport.publish("celery", bad)
    with worker_thread(app):
        assert add.delay(1, 1).get(timeout=10) == 2
        letters = transport.dead_letters(queue="celery")
    reasons = [letter.reason for letter in letters]
    assert len(reasons) == 4, reasons
    assert "not a task message: it has no headers" in reasons[0]
    assert "refused content type 'application/x-python-serialize'" in reasons[1]
    assert "JSON" in reasons[2] or "json" in reasons[2]
    assert "unregistered task 't.nope'" in reasons[3]
    assert app.AsyncResult("p").state == states.FAILURE  # recorded for the ones with an id


def test_join_settles_everything_on_a_real_broker(app: Celeriac) -> None:
    """celeriac.testing.join with an in-process worker on Redis: countdowns and chain steps
    included, every result is stored when it returns."""
    from celeriac import chain
    from celeriac.testing import join

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app, concurrency=4) as worker:
        results = [add.delay(n, n) for n in range(100)]
        later = add.apply_async((1, 2), countdown=0.3)
        chained = chain(add.s(1, 1), add.s(1), add.s(1)).apply_async()
        join(worker)
        stored = app.result_store.get_many([r.id for r in [*results, later, chained]])
        assert [record.state if record else "PENDING" for record in stored] == [states.SUCCESS] * 102
