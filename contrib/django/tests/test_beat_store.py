"""celeriac_django.beat's models and the django:// store, on SQLite and PostgreSQL: crontab and
solar schedules validate, entries read through beat's own rules, the change marker, the
leader lease, and entries added with ``celeriac beat schedule add``'s tables."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from beat_support import KINDS
from beat_support import beat_database
from beat_support import wait_for

from celeriac import Celeriac
from celeriac.plugin import ConfigError
from celeriac.plugin import StoredSchedule
from celeriac.plugin import schedule_rows


@pytest.fixture(params=KINDS)
def alias(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with beat_database(request.param, tmp_path) as (name, _):
        yield name


@pytest.fixture
def app() -> Celeriac:
    """The project's app (a second app here would become the one shared tasks resolve to)."""
    from celeriac_django import get_app

    return get_app()


def _errors(instance: Any) -> dict[str, list[str]]:
    from django.core.exceptions import ValidationError

    try:
        instance.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return dict(exc.message_dict)
    return {}


def test_crontab_validates() -> None:
    from celeriac_django.beat.models import CrontabSchedule

    assert (
        _errors(CrontabSchedule(minute="30", hour="9", day_of_week="mon-fri", timezone="Europe/Berlin")) == {}
    )
    assert list(_errors(CrontabSchedule(minute="61"))) == ["minute"]
    assert list(_errors(CrontabSchedule(hour="9", day_of_week="funday"))) == ["day_of_week"]
    # Each field is right on its own; together they never match a date.
    assert "day-of-month" in str(_errors(CrontabSchedule(day_of_month="31", month_of_year="2"))["__all__"])
    assert "timezone" in _errors(CrontabSchedule(timezone="Mars/Olympus_Mons"))


def test_solar_validates() -> None:
    from celeriac_django.beat.models import SolarSchedule

    berlin = {"latitude": Decimal("52.52"), "longitude": Decimal("13.405")}
    assert _errors(SolarSchedule(event="sunset", **berlin)) == {}
    assert "event" in _errors(SolarSchedule(event="moonrise", **berlin))
    assert "latitude" in _errors(SolarSchedule(event="sunset", latitude=Decimal(91), longitude=Decimal(0)))
    assert "longitude" in _errors(
        SolarSchedule(event="dawn_civil", latitude=Decimal(0), longitude=Decimal(-181))
    )


def test_an_entry_has_exactly_one_schedule(alias: str) -> None:
    from celeriac_django.beat.models import CrontabSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    interval = IntervalSchedule.objects.using(alias).create(every=5, period="minutes")
    crontab = CrontabSchedule.objects.using(alias).create(minute="0")
    assert "one schedule" in str(_errors(PeriodicTask(name="none", task="t.t")))
    both = _errors(PeriodicTask(name="two", task="t.t", interval=interval, crontab=crontab))
    assert set(both) == {"interval", "crontab"}, both
    assert "JSON list" in str(_errors(PeriodicTask(name="a", task="t.t", interval=interval, args={"x": 1})))
    assert _errors(PeriodicTask(name="ok", task="t.t", interval=interval, args=[1], kwargs={"x": 1})) == {}


def test_entries_read_through_beats_rules(alias: str, app: Celeriac) -> None:
    from celeriac_django.beat.models import ClockedSchedule
    from celeriac_django.beat.models import CrontabSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask
    from celeriac_django.beat.models import SolarSchedule

    tasks = PeriodicTask.objects.using(alias)
    morning = CrontabSchedule.objects.using(alias).create(minute="30", hour="9", timezone="Europe/Berlin")
    sunrise = SolarSchedule.objects.using(alias).create(event="sunrise", latitude=52.52, longitude=13.405)
    at = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)
    clocked = ClockedSchedule.objects.using(alias).create(clocked_time=at)
    hourly = IntervalSchedule.objects.using(alias).create(every=1, period="hours")
    tasks.create(name="morning", task="t.report", crontab=morning, kwargs={"kind": "daily"}, queue="reports")
    tasks.create(name="sunrise", task="t.lights", solar=sunrise, priority=3)
    tasks.create(name="launch", task="t.launch", clocked=clocked)
    tasks.create(name="warm", task="t.warm", interval=hourly, one_off=True, expire_seconds=60)
    tasks.create(name="off", task="t.off", interval=hourly, enabled=False)

    now = time.time()
    with StoredSchedule(app, schedule_store=f"django://{alias}") as stored:
        rows = {row.name: row for row in schedule_rows(stored, now)}
    assert sorted(rows) == ["launch", "morning", "sunrise", "warm"]  # not the disabled one
    assert rows["morning"].queue == "reports"
    assert rows["morning"].kwargs == {"kind": "daily"}
    next_morning = dt.datetime.fromtimestamp(rows["morning"].next_run or 0, ZoneInfo("Europe/Berlin"))
    assert (next_morning.hour, next_morning.minute) == (9, 30)
    assert 0 < (rows["sunrise"].next_run or 0) - now <= 86400 + 3600
    assert "sunrise" in rows["sunrise"].schedule
    assert rows["launch"].next_run == at.timestamp()
    assert rows["warm"].schedule.startswith("once")
    assert rows["warm"].table is not None
    assert rows["warm"].table["expires"] == 60.0


def test_the_change_marker_moves_with_every_change(alias: str) -> None:
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask
    from celeriac_django.beat.models import ScheduleVersion

    seen = [ScheduleVersion.current(alias)]

    def moved() -> None:
        now = ScheduleVersion.current(alias)
        assert now > seen[-1]
        seen.append(now)

    interval = IntervalSchedule.objects.using(alias).create(every=1, period="hours")
    moved()
    task = PeriodicTask.objects.using(alias).create(name="e", task="t.t", interval=interval)
    moved()
    task.kwargs = {"x": 1}
    task.save()
    moved()
    interval.every = 2
    interval.save()  # the schedule of an entry changed: its entry did
    moved()
    PeriodicTask.objects.using(alias).filter(name="e").update(enabled=False)
    moved()
    PeriodicTask.objects.using(alias).filter(name="e").delete()
    moved()
    PeriodicTask.objects.using(alias).bulk_create([PeriodicTask(name="bulk", task="t.t", interval=interval)])
    moved()
    bulk = PeriodicTask.objects.using(alias).get(name="bulk")
    bulk.enabled = False
    PeriodicTask.objects.using(alias).bulk_update([bulk], ["enabled"])
    moved()
    PeriodicTask.objects.using(alias).filter(name="nothing").update(enabled=False)
    assert ScheduleVersion.current(alias) == seen[-1]  # no row changed


def test_the_leader_lease(alias: str, app: Celeriac) -> None:
    from celeriac_django.beat.store import DjangoScheduleStore

    store = DjangoScheduleStore(f"django://{alias}", app.config)
    try:
        assert store.acquire("beat", "a", 30)
        assert not store.acquire("beat", "b", 30)
        assert store.renew("beat", "a", 30)
        assert not store.renew("beat", "b", 30)
        assert not store.claim("beat", "b", "entry", 100.0)
        assert store.claim("beat", "a", "entry", 100.0)
        assert store.claimed_at("entry") == 100.0
        store.set_last_run_at("entry", 100.0)
        assert store.last_run_at("entry") == 100.0
        store.release("beat", "b")  # not b's: kept
        assert not store.acquire("beat", "b", 30)
        store.release("beat", "a")
        assert store.acquire("beat", "b", 0.2)
        # b's short lease runs out unrenewed: a takes over, and b can no longer claim.
        wait_for(lambda: store.acquire("beat", "a", 30), 5, "the expired lease taken over")
        assert not store.claim("beat", "b", "entry", 200.0)
        assert store.claimed_at("entry") == 100.0
    finally:
        store.close()


def test_entries_added_as_tables(alias: str, app: Celeriac) -> None:
    from celeriac_django.beat.models import PeriodicTask

    with StoredSchedule(app, schedule_store=f"django://{alias}") as stored:
        stored.add("nightly", {"task": "t.cleanup", "cron": "0 3 * * *", "timezone": "Europe/Berlin"})
        stored.add("often", {"task": "t.poll", "every": "90s", "args": [1], "queue": "io", "expires": 30})
        stored.add("fields", {"task": "t.x", "cron": {"minute": "*/15", "day_of_week": "mon-fri"}})
        stored.add("listed", {"task": "t.x", "cron": {"minute": [0, 30], "hour": 9}})
        stored.add(
            "sunset", {"task": "t.lights", "solar": {"event": "sunset", "latitude": 52.5, "longitude": 13.4}}
        )
        stored.add("launch", {"task": "t.go", "clocked": "2031-05-04T12:00:00+00:00"})
        with pytest.raises(ConfigError, match="time zone for cron entries only"):
            stored.add("bad", {"task": "t.x", "every": 5, "timezone": "Europe/Berlin"})
        with pytest.raises(ConfigError, match="beat entry 'worse'"):
            stored.add("worse", {"task": "t.x", "cron": "61 * * * *"})
        tables = stored.tables()
        assert stored.remove("fields")
        assert not stored.remove("fields")
    nightly = PeriodicTask.objects.using(alias).select_related("crontab").get(name="nightly")
    assert nightly.crontab is not None
    assert (nightly.crontab.minute, nightly.crontab.hour, nightly.crontab.timezone) == (
        "0",
        "3",
        "Europe/Berlin",
    )
    often = PeriodicTask.objects.using(alias).select_related("interval").get(name="often")
    assert often.interval is not None
    assert (often.interval.every, often.interval.period, often.expire_seconds) == (90, "seconds", 30)
    assert tables["often"] == {
        "task": "t.poll",
        "args": [1],
        "kwargs": {},
        "queue": "io",
        "expires": 30.0,
        "every": 90.0,
    }
    assert tables["fields"]["cron"]["minute"] == "*/15"
    assert (tables["listed"]["cron"]["minute"], tables["listed"]["cron"]["hour"]) == ("0,30", "9")
    assert tables["sunset"]["solar"] == {"event": "sunset", "latitude": 52.5, "longitude": 13.4}
    assert dt.datetime.fromisoformat(tables["launch"]["clocked"]) == dt.datetime(
        2031, 5, 4, 12, tzinfo=dt.UTC
    )
    assert not PeriodicTask.objects.using(alias).filter(name__in=["bad", "worse", "fields"]).exists()


def test_store_urls_are_checked(app: Celeriac) -> None:
    from celeriac_django.beat.store import DjangoScheduleStore

    with pytest.raises(ConfigError, match="has no 'nowhere'"):
        DjangoScheduleStore("django://nowhere", app.config)
    with pytest.raises(ConfigError, match="expected django://"):
        DjangoScheduleStore("django://default/extra", app.config)


def test_the_admin_pages_are_consistent() -> None:
    from django.apps import apps
    from django.contrib import admin

    from celeriac_django.beat.models import PeriodicTask

    config = apps.get_app_config("celeriac_django_beat")
    assert admin.site.check([config]) == []
    assert [problem for model in config.get_models() for problem in model.check()] == []
    assert admin.site.is_registered(PeriodicTask)


def test_naive_times_when_use_tz_is_off(alias: str, app: Celeriac) -> None:
    from django.test import override_settings

    from celeriac_django.beat.models import ClockedSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask
    from celeriac_django.beat.store import DjangoScheduleStore

    with override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin"):
        tasks = PeriodicTask.objects.using(alias)
        hourly = IntervalSchedule.objects.using(alias).create(every=1, period="hours")
        clocked = ClockedSchedule.objects.using(alias).create(clocked_time=dt.datetime(2031, 5, 4, 12, 0))
        tasks.create(name="launch", task="t.go", clocked=clocked)
        tasks.create(name="warm", task="t.warm", interval=hourly, one_off=True)
        store = DjangoScheduleStore(f"django://{alias}", app.config)
        try:
            tables = store.stored_entries()
            # Naive times are Django's TIME_ZONE (CEST, UTC+2, in May).
            launch = dt.datetime.fromisoformat(tables["launch"]["clocked"])
            assert launch == dt.datetime(2031, 5, 4, 10, 0, tzinfo=dt.UTC)
            assert dt.datetime.fromisoformat(tables["warm"]["one_off"]["after"]).tzinfo is not None
            with StoredSchedule(app, schedule_store=f"django://{alias}") as stored:
                assert [row.name for row in schedule_rows(stored, time.time())] == ["launch", "warm"]
            store.set_last_run_at("warm", 1_800_000_000.0)  # 2027-01-15 08:00 UTC
        finally:
            store.close()
        warm = tasks.get(name="warm")
        assert warm.last_run_at == dt.datetime(2027, 1, 15, 9, 0)  # naive, Berlin (CET)
        assert (warm.enabled, warm.total_run_count) == (False, 1)


def test_a_run_is_recorded_while_another_connection_writes(tmp_path: Path, app: Celeriac) -> None:
    """SQLite: another process holds the write lock for a moment (a standby beat trying for
    the lease, an admin edit). Beat's claim, its record of the run and an entry added from the
    command line wait for it, within the database's timeout: a transaction that read before
    writing would instead fail at once ("database is locked")."""
    import sqlite3
    import threading

    from celeriac_django.beat.store import DjangoScheduleStore

    with beat_database("sqlite", tmp_path) as (alias, config):
        store = DjangoScheduleStore(f"django://{alias}", app.config)
        other = sqlite3.connect(config["NAME"], isolation_level=None, check_same_thread=False)
        try:
            assert store.acquire("beat", "a", 30)
            for step in (
                lambda: store.claim("beat", "a", "entry", 100.0),
                lambda: store.set_last_run_at("entry", 100.0),
                lambda: store.put_entry("added", {"task": "t.x", "every": 5}),
            ):
                other.execute("BEGIN IMMEDIATE")  # the write lock, as a writer holds it
                released = threading.Timer(0.3, other.execute, ["COMMIT"])
                released.start()
                try:
                    step()
                finally:
                    released.join()
            assert store.claimed_at("entry") == 100.0
            assert store.last_run_at("entry") == 100.0
            assert set(store.stored_entries()) == {"added"}
        finally:
            other.close()
            store.close()
