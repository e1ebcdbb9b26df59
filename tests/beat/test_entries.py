"""Entries from TOML and from code, and the errors that name the entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import PeriodicTask
from celeriac._beat.beat import Beat
from celeriac._beat.entries import load_entries
from celeriac._client.periodic import add_periodic_task
from celeriac._client.periodic import periodic_tasks
from celeriac._model.schedules import BeatConfig

MakeApp = Callable[..., Celeriac]
celeriac_cron = pytest.importorskip("celeriac_cron")


def _entries(app: Celeriac) -> dict[str, PeriodicTask]:
    return {e.name: e for e in load_entries(app, app.config.section("beat", BeatConfig))}


def test_toml_entry_with_every_option(make_app: MakeApp) -> None:
    app = make_app(
        """
        [beat]
        timezone = "Europe/Berlin"
        [beat.schedule.cleanup]
        task = "proj.cleanup"
        cron = "30 2 * * *"
        args = [1, "two"]
        kwargs = { dry_run = true }
        queue = "periodic"
        priority = 7
        expires = 60
        missed = "skip"
        timezone = "America/New_York"
        """
    )
    entry = _entries(app)["cleanup"]
    assert entry.task == "proj.cleanup"
    assert entry.schedule == celeriac_cron.crontab("30 2 * * *")
    assert (entry.args, dict(entry.kwargs)) == ((1, "two"), {"dry_run": True})
    assert (entry.queue, entry.priority, entry.expires, entry.missed) == ("periodic", 7, 60.0, "skip")
    assert entry.timezone is not None and entry.timezone.key == "America/New_York"
    assert entry.source.endswith("celeriac-0.toml")


def test_defaults(make_app: MakeApp) -> None:
    entry = _entries(make_app('[beat.schedule.p]\ntask = "proj.p"\nevery = 5\n'))["p"]
    assert (entry.args, dict(entry.kwargs), entry.queue, entry.missed, entry.timezone) == (
        (),
        {},
        None,
        None,
        None,
    )
    assert entry.schedule == celeriac_cron.every(5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'task = "proj.p"\nevry = "5s"',
            "beat entry 'p' \\(.*celeriac-0.toml\\): unknown key 'evry'; did you mean 'every'",
        ),
        ('every = "5s"', "beat entry 'p' .*: no task"),
        ('task = "proj.p"', "beat entry 'p' .*: no schedule: set one of clocked, cron, every, (.*, )?solar"),
        ('task = "proj.p"\nevery = 5\ncron = "* * * * *"', "several schedules \\(every, cron\\)"),
        (
            'task = "proj.p"\ncron = "61 * * * *"',
            "beat entry 'p' .*: cron = '61 \\* \\* \\* \\*': Bad minute",
        ),
        ('task = "proj.p"\nevery = "soon"', "every = 'soon': expected a duration"),
        ('task = "proj.p"\nevery = 5\npriority = 12', "priority = 12: expected an integer from 0 to 9"),
        (
            'task = "proj.p"\nevery = 5\nmissed = "twice"',
            "missed = 'twice': expected one of 'run_once', 'skip'",
        ),
        (
            'task = "proj.p"\nevery = 5\ntimezone = "Mars/Olympus"',
            "timezone = 'Mars/Olympus': unknown time zone",
        ),
        ('task = "proj.p"\nevery = 5\nargs = "x"', "args = 'x': expected a list"),
        ('task = "proj.p"\nevery = 5\nexpires = -1', "expires = -1: expected a number of seconds above 0"),
        ('task = "proj.p"\nsolar = { event = "sunset" }', "solar = .*: missing latitude, longitude"),
    ],
)
def test_errors_name_the_entry(make_app: MakeApp, table: str, message: str) -> None:
    app = make_app(f"[beat.schedule.p]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        _entries(app)


def test_every_broken_entry_is_reported_at_once(make_app: MakeApp) -> None:
    app = make_app(
        '[beat.schedule.a]\ntask = "x"\n'
        "[beat.schedule.b]\nevery = 5\n"
        '[beat.schedule.ok]\ntask = "x"\nevery = 5\n'
    )
    with pytest.raises(ConfigError) as caught:
        _entries(app)
    assert "beat entry 'a'" in str(caught.value) and "beat entry 'b'" in str(caught.value)
    assert "'ok'" not in str(caught.value)


def test_arguments_are_checked_against_a_registered_task(make_app: MakeApp) -> None:
    app = make_app('[beat.schedule.add]\ntask = "proj.add"\nevery = 5\nargs = [1, 2, 3]\n')

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(
        ConfigError, match=r"beat entry 'add' .*: task proj.add\(x: int, y: int\) -> int: too many"
    ):
        _entries(app)


def test_beat_checks_entries_and_timezone_when_it_opens(make_app: MakeApp, store_url: str) -> None:
    with pytest.raises(ConfigError, match="beat entry 'p'"):
        Beat(make_app('[beat.schedule.p]\ntask = "x"\n'), schedule_store=store_url).open()
    with pytest.raises(ConfigError, match="\\[beat\\] timezone = 'Berlin': unknown time zone"):
        Beat(make_app('[beat]\ntimezone = "Berlin"\n'), schedule_store=store_url).open()
    with pytest.raises(ConfigError, match=r"renew_interval .* must be above 0 and below lease"):
        Beat(make_app("[beat]\nlease = 1.0\nrenew_interval = 2.0\n"), schedule_store=store_url).open()


def test_unknown_key_in_beat_section(make_app: MakeApp) -> None:
    with pytest.raises(ConfigError, match="max_intervall"):
        make_app("[beat]\nmax_intervall = 5\n")


# --- code ------------------------------------------------------------------------------------


def test_entries_from_code(make_app: MakeApp) -> None:
    app = make_app()

    @app.task(name="proj.ping")
    def ping(n: int) -> int:
        return n

    add_periodic_task(app, 30, ping, (1,))
    add_periodic_task(app, timedelta(minutes=5), "proj.ping", (2,), name="five", queue="q", expires=10)
    add_periodic_task(app, {"cron": "0 3 * * *"}, "proj.ping", (3,), name="nightly", missed="skip")
    add_periodic_task(app, celeriac_cron.solar("sunrise", 0, 0), "proj.ping", kwargs={"n": 4}, name="dawn")
    entries = _entries(app)
    assert entries["proj.ping"].schedule == celeriac_cron.every(30)
    assert entries["five"].schedule == celeriac_cron.every("5m")
    assert (entries["five"].queue, entries["five"].expires) == ("q", 10.0)
    assert entries["nightly"].schedule == celeriac_cron.crontab("0 3 * * *")
    assert entries["nightly"].missed == "skip"
    assert dict(entries["dawn"].kwargs) == {"n": 4}
    assert all(entry.source == "code" for entry in entries.values())


def test_code_errors_name_the_entry(make_app: MakeApp) -> None:
    app = make_app()

    @app.task(name="proj.ping")
    def ping(n: int) -> int:
        return n

    add_periodic_task(app, 30, ping, (1,))
    with pytest.raises(ConfigError, match=r"beat entry 'proj.ping' \(code\) is declared twice"):
        add_periodic_task(app, 60, ping, (1,))
    with pytest.raises(ConfigError, match=r"beat entry 'x' \(code\): every = 0: the interval must be longer"):
        add_periodic_task(app, 0, ping, (1,), name="x")
    with pytest.raises(ConfigError, match="beat entry 'y' \\(code\\): cron = '99 \\* \\* \\* \\*'"):
        add_periodic_task(app, {"cron": "99 * * * *"}, ping, (1,), name="y")
    with pytest.raises(
        ConfigError, match=r"beat entry 'z' \(code\): task proj.ping\(n: int\) -> int: missing"
    ):
        add_periodic_task(app, 5, ping, name="z")
    assert set(periodic_tasks(app)) == {"proj.ping"}


def test_a_toml_entry_replaces_a_code_entry_of_the_same_name(make_app: MakeApp) -> None:
    app = make_app('[beat.schedule.ping]\ntask = "proj.ping"\nevery = "1m"\n')
    add_periodic_task(app, 30, "proj.ping", name="ping")
    assert _entries(app)["ping"].schedule == celeriac_cron.every(60)


def test_a_signature_as_in_celery(make_app: MakeApp) -> None:
    app = make_app()

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    entry = add_periodic_task(app, 10.0, add.s(2).set(queue="math"), (3,), name="add every 10")
    assert (entry.task, entry.args, entry.queue) == ("proj.add", (2, 3), "math")
    with pytest.raises(ConfigError, match="the signature's link cannot be sent by beat"):
        add_periodic_task(app, 10.0, add.s(1, 2).link(add.s(3)), name="linked")


def test_the_app_method(make_app: MakeApp) -> None:
    app = make_app()
    entry = app.add_periodic_task({"every": "1m"}, "proj.ping", name="ping", queue="q")
    assert app.periodic_tasks == {"ping": entry}
    assert _entries(app)["ping"].queue == "q"
