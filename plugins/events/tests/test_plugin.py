"""celeriac-events as users get it: installed, discovered, configured."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import celeriac_events
from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import testing
from celeriac._contract.plugins import AUTOLOAD_KILL_SWITCH
from celeriac_events import BrokerSink
from celeriac_events import EventsConfig
from celeriac_events import JsonlSink
from celeriac_events import LogSink
from celeriac_events import _wire
from celeriac_events import encode_batch


@pytest.fixture(autouse=True)
def _autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_KILL_SWITCH, raising=False)


def make_app(config: Path | bool = False, **settings: Any) -> Celeriac:
    return Celeriac("tests", broker="memory://", plugins=[testing], env={}, config=config, **settings)


def test_entry_point_is_registered_and_discovered() -> None:
    assert {ep.name: ep.value for ep in entry_points(group="celeriac.plugins")}["events"] == "celeriac_events"
    app = make_app()
    assert app.plugins.pm.get_plugin("events") is celeriac_events
    assert app.config.section("events", EventsConfig) == EventsConfig()
    assert "events" in {command.name for command in app.plugins.cli_commands()}
    app.close()


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, threading, celeriac_events\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert not logging.getLogger().handlers\n"
        "assert not logging.getLogger('celeriac.events').handlers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={})


def test_section_from_a_file_picks_the_sinks(tmp_path: Path) -> None:
    config = tmp_path / "celeriac.toml"
    config.write_text(
        '[events]\nsinks = ["jsonl", "log"]\nfile = "ev.jsonl"\nlog_level = "debug"\nbatch_interval = 2\n'
    )
    app = make_app(config=config)
    sinks = app.plugins.event_sinks(app.config)
    assert [type(sink) for sink in sinks] == [JsonlSink, LogSink]
    assert sinks[1].level == 10  # type: ignore[attr-defined]
    worker = app.worker()
    assert "events.broker" not in worker.blueprint().steps  # no broker sink, nothing to bind
    for sink in sinks:
        sink.close()
    app.close()


def test_broker_step_is_in_the_graph_by_default() -> None:
    app = make_app()
    blueprint = app.worker().blueprint()
    assert blueprint.steps["events.broker"].requires == {"kernel.connection", "kernel.events"}
    assert isinstance(app.plugins.event_sinks(app.config)[0], BrokerSink)
    app.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"sinks": ["kafka"]}, "unknown sink kafka"),
        ({"batch_interval": 0}, "must be > 0"),
        ({"max_buffer": "many"}, "expected int"),
        ({"bogus": 1}, "unknown key 'events.bogus'"),
    ],
)
def test_bad_settings_are_configuration_errors(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(events=section)


def test_both_encoders_give_the_same_json() -> None:
    events = [{"type": "task-failed", "uuid": "é", "exception": "ValueError('x')", "odd": {3}, "big": 2**70}]
    fast = encode_batch(events).body
    slow = _wire._stdlib_dumps(events)
    assert json.loads(fast) == json.loads(slow)
    assert json.loads(fast)[0]["odd"] == "{3}"
    assert json.loads(fast)[0]["big"] == 2**70
