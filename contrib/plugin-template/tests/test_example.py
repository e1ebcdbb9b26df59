"""celeriac-example as users get it: installed, discovered, and run by a real worker thread."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import celeriac_example
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import testing
from celeriac._contract.plugins import AUTOLOAD_KILL_SWITCH
from celeriac.plugin import Serializer
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_example import ExampleConfig
from celeriac_example import SortedJsonSerializer

MakeApp = Callable[..., Celeriac]


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeApp]:
    """Build apps the way users do (installed plugins autoloaded) on the in-memory broker."""
    # The kill switch is read from os.environ, not from the app's ``env``.
    monkeypatch.delenv(AUTOLOAD_KILL_SWITCH, raising=False)
    apps: list[Celeriac] = []

    def make(*, config: Path | bool = False, **settings: Any) -> Celeriac:
        app = Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=config, **settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


# --- packaging and discovery ------------------------------------------------------------


def test_entry_point_is_registered() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="celeriac.plugins")}
    assert found.get("example") == "celeriac_example"


def test_app_discovers_the_plugin(make_app: MakeApp) -> None:
    app = make_app()
    assert app.plugins.pm.get_plugin("example") is celeriac_example
    serializers = app.plugins.serializers()
    assert isinstance(serializers["json-sorted"], SortedJsonSerializer)
    assert "json" in serializers  # a distinct name: installing the template conflicts with nothing
    assert app.config.section("example", ExampleConfig) == ExampleConfig()


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, threading, celeriac_example\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert not logging.getLogger().handlers\n"
        "assert not logging.getLogger('celeriac_example').handlers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={})


# --- the serializer ---------------------------------------------------------------------


def test_serializer_gives_equal_bytes_for_equal_values() -> None:
    serializer = SortedJsonSerializer()
    assert isinstance(serializer, Serializer)
    first = serializer.dumps({"b": 1, "a": {"d": [1, 2.5], "c": "é"}})
    second = serializer.dumps({"a": {"c": "é", "d": [1, 2.5]}, "b": 1})
    assert first == second == '{"a":{"c":"é","d":[1,2.5]},"b":1}'.encode()
    assert serializer.loads(first) == {"a": {"c": "é", "d": [1, 2.5]}, "b": 1}


def test_serializer_refuses_values_json_cannot_carry() -> None:
    serializer = SortedJsonSerializer()
    with pytest.raises(ValueError, match="JSON compliant"):
        serializer.dumps(float("nan"))
    with pytest.raises(TypeError):
        serializer.dumps({1: "a", "b": 2})  # mixed key types cannot be sorted


def test_task_round_trips_with_the_serializer(make_app: MakeApp) -> None:
    app = make_app(serializer="json-sorted", accept=["json", "json-sorted"])

    @app.task
    def echo(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    result = echo.delay(zebra=1, apple={"y": 2, "x": 1})
    # Look at the message on the broker before a worker takes it.
    (delivery,) = app.transport.fetch([app.config.default_queue], 1, timeout=1)
    assert delivery.envelope.content_type == "application/x-json-sorted"
    body = delivery.envelope.body
    assert body == SortedJsonSerializer().dumps(json.loads(body))
    app.transport.reject([delivery], requeue=True)

    with worker_thread(app, concurrency=1):
        assert result.get(timeout=5) == {"apple": {"x": 1, "y": 2}, "zebra": 1}


# --- the stats step and the [example] section -------------------------------------------


def test_stats_step_is_off_by_default(make_app: MakeApp) -> None:
    blueprint = make_app().worker().blueprint()
    assert "example.stats" in blueprint.all_steps
    assert "example.stats" not in blueprint.steps


def test_stats_step_logs_when_enabled(make_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="celeriac_example")
    app = make_app(example={"stats": True, "interval": 0.05})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    worker = app.worker()
    assert "example.stats" in worker.blueprint().steps
    with worker_thread(app, concurrency=1):
        assert add.delay(1, 2).get(timeout=5) == 3
        logged = wait_for(
            lambda: any(
                record.name == "celeriac_example" and "1 tasks processed, 0 in flight" in record.getMessage()
                for record in caplog.records
            )
        )
    assert logged, [record.getMessage() for record in caplog.records]


def test_section_is_read_from_the_config_file(make_app: MakeApp, tmp_path: Path) -> None:
    path = tmp_path / "celeriac.toml"
    path.write_text("[example]\nstats = true\ninterval = 2.5\n", encoding="utf-8")
    app = make_app(config=path)
    assert app.config.section("example", ExampleConfig) == ExampleConfig(stats=True, interval=2.5)
    assert "example.stats" in app.worker().blueprint().steps


def test_unknown_key_in_section_is_an_error(make_app: MakeApp) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'example\.bogus'"):
        make_app(example={"stats": True, "bogus": 1})


@pytest.mark.parametrize(("value", "message"), [(0, "must be > 0"), ("often", "expected float")])
def test_bad_interval_is_an_error(make_app: MakeApp, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(example={"interval": value})
