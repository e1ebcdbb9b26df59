"""The plugin as installed: its hook, and entries written in TOML reaching beat."""

from __future__ import annotations

from pathlib import Path

import pluggy

import celeriac_cron
from celeriac import Celeriac
from celeriac import testing
from celeriac._beat.entries import load_entries
from celeriac._contract.plugins import make_plugins
from celeriac._model.schedules import BeatConfig


def test_hook_offers_four_types() -> None:
    pm = pluggy.PluginManager("celeriac")
    from celeriac.plugin import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(celeriac_cron)
    [types] = pm.hook.celeriac_add_schedule_types()
    assert [t.key for t in types] == ["every", "cron", "solar", "clocked"]


def test_installed_and_found_by_entry_point() -> None:
    plugins = make_plugins()
    assert set(plugins.schedule_types()) >= {"every", "cron", "solar", "clocked"}
    infos = {info.name: info for info in plugins.describe()}
    assert "schedule type cron" in infos["cron"].provides


def test_toml_entries(tmp_path: Path) -> None:
    (tmp_path / "celeriac.toml").write_text(
        "[beat.schedule.ping]\ntask = 'proj.ping'\nevery = '30s'\n"
        "[beat.schedule.report]\ntask = 'proj.report'\n"
        "cron = { minute = 0, hour = 9, day_of_week = 'mon-fri' }\n"
        "[beat.schedule.lights]\ntask = 'proj.lights'\n"
        "solar = { event = 'sunset', latitude = 52.5, longitude = 13.4 }\n"
        "[beat.schedule.launch]\ntask = 'proj.launch'\nclocked = 2030-06-01T09:00:00\n"
    )
    extra = [testing]
    app = Celeriac("proj", broker="memory://", plugins=extra, env={}, config=tmp_path / "celeriac.toml")
    entries = {e.name: e for e in load_entries(app, app.config.section("beat", BeatConfig))}
    assert isinstance(entries["ping"].schedule, celeriac_cron.Every)
    assert entries["report"].schedule == celeriac_cron.crontab(minute=0, hour=9, day_of_week="mon-fri")
    assert entries["lights"].schedule == celeriac_cron.solar("sunset", 52.5, 13.4)
    assert isinstance(entries["launch"].schedule, celeriac_cron.Clocked)
