"""The ``cron`` schedule: the five-field string (cron's rules) and Celery's keyword fields."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from celeriac_cron import Crontab
from celeriac_cron import crontab
from celeriac_cron._crontab import celery_field
from celeriac_cron._crontab import from_value

BERLIN = ZoneInfo("Europe/Berlin")


def _runs(schedule: Crontab, start: datetime, count: int) -> list[datetime]:
    found: list[datetime] = []
    moment = start
    for _ in range(count):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        found.append(nxt)
        moment = nxt
    return found


def test_string_form() -> None:
    runs = _runs(crontab("*/15 9-17 * * mon-fri"), datetime(2025, 1, 3, 17, 50, tzinfo=UTC), 3)
    assert runs == [
        datetime(2025, 1, 6, 9, 0, tzinfo=UTC),  # Friday evening -> Monday morning
        datetime(2025, 1, 6, 9, 15, tzinfo=UTC),
        datetime(2025, 1, 6, 9, 30, tzinfo=UTC),
    ]


def test_next_is_strictly_after() -> None:
    moment = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert crontab("0 12 * * *").next_after(moment) == datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert crontab("0 12 * * *").next_after(moment.replace(second=1)) == datetime(2025, 1, 2, 12, tzinfo=UTC)


def test_string_form_ors_day_of_month_and_day_of_week_as_cron_does() -> None:
    runs = _runs(crontab("0 0 13 * fri"), datetime(2025, 6, 1, tzinfo=UTC), 3)
    assert [run.day for run in runs] == [6, 13, 20]  # Fridays, and the 13th (a Friday here)


def test_keyword_form_ands_day_of_month_and_day_of_week_as_celery_does() -> None:
    schedule = crontab(minute=0, hour=22, day_of_month="1-7", day_of_week="saturday")
    runs = _runs(schedule, datetime(2025, 1, 1, tzinfo=BERLIN), 4)
    assert [run.date().isoformat() for run in runs] == [
        "2025-01-04",
        "2025-02-01",
        "2025-03-01",
        "2025-04-05",
    ]
    assert all(run.hour == 22 and run.weekday() == 5 for run in runs)


def test_friday_the_13th() -> None:
    runs = _runs(
        crontab(minute=0, hour=0, day_of_month=13, day_of_week="fri"), datetime(2025, 1, 1, tzinfo=UTC), 3
    )
    assert [run.date().isoformat() for run in runs] == ["2025-06-13", "2026-02-13", "2026-03-13"]


def test_keyword_defaults_are_every_minute() -> None:
    start = datetime(2025, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert _runs(crontab(), start, 2) == [
        datetime(2025, 1, 1, 10, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 10, 2, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        (5, "minute", "5"),
        ("*/15", "minute", "*/15"),
        ([0, 30], "minute", "0,30"),
        ("1-10/2", "day_of_month", "1-10/2"),
        ("mon-fri", "day_of_week", "1-5"),
        ("Monday,Wednesday", "day_of_week", "1,3"),
        ("fri-mon", "day_of_week", "5,6,0,1"),
        ("22-2", "hour", "22,23,0,1,2"),
        ("22-3/2", "hour", "22,0,2"),
        ("jan,jul", "month_of_year", "1,7"),
        ("nov-feb", "month_of_year", "11,12,1,2"),
        ("*", "day_of_week", "*"),
    ],
)
def test_celery_fields(value: object, field: str, expected: str) -> None:
    assert celery_field(value, field) == expected


def test_wrapping_weekday_range() -> None:
    runs = _runs(crontab(minute=0, hour=12, day_of_week="fri-mon"), datetime(2025, 1, 1, tzinfo=UTC), 4)
    assert [run.strftime("%a") for run in runs] == ["Fri", "Sat", "Sun", "Mon"]


@pytest.mark.parametrize(
    ("nickname", "expression"),
    [("@daily", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@weekly", "0 0 * * 0"), ("@yearly", "0 0 1 1 *")],
)
def test_nicknames(nickname: str, expression: str) -> None:
    assert crontab(nickname).expression == expression


def test_from_toml_values() -> None:
    assert from_value("0 3 * * *") == Crontab("0 3 * * *")
    assert from_value({"minute": 0, "hour": "9-17"}) == Crontab("0 9-17 * * *")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("61 * * * *", "Bad minute"),
        ("* * *", "five fields"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ({"minute": 0, "hours": 1}, "unknown field 'hours'"),
        ({"day_of_week": "funday"}, "day_of_week: 'funday' is not a number"),
        ({"hour": 24}, "hour: 24 is outside 0-23"),
        ({"minute": "*/0"}, "bad step"),
        ({"minute": []}, "empty list"),
        ({"day_of_month": 30, "month_of_year": 2, "day_of_week": "mon"}, "never matches"),
    ],
)
def test_errors_name_the_field(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_value(value)


@pytest.mark.parametrize("value", [5, None, ["0 3 * * *"], {"minute": True}])
def test_wrong_types(value: object) -> None:
    with pytest.raises(TypeError):
        from_value(value)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        crontab("0 0 * * *").next_after(datetime(2025, 1, 1))
