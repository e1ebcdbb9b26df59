"""The ``one_off`` schedule type: an interval, crontab or solar schedule run once, and once
more after the entry changed (re-enabled or edited)."""

from __future__ import annotations

import datetime as dt

import pytest

from celeriac_django.beat.oneoff import from_value

T = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)


def test_runs_once_counted_from_the_last_change() -> None:
    once = from_value({"every": "10s", "after": T.isoformat()})
    # Beat took charge before the change: the first run is one interval after the change.
    first = once.first_run(T - dt.timedelta(hours=1))
    assert first == T + dt.timedelta(seconds=10)
    assert once.next_after(first) is None  # done
    # A run from before the change (the entry was enabled again since): one more run.
    assert once.next_after(T - dt.timedelta(days=1)) == T + dt.timedelta(seconds=10)


def test_crontab_and_solar_inside() -> None:
    cron = from_value({"cron": {"minute": "30", "hour": "10"}, "after": T.isoformat()})
    assert cron.first_run(T - dt.timedelta(days=3)) == dt.datetime(2030, 1, 1, 10, 30, tzinfo=dt.UTC)
    assert cron.next_after(dt.datetime(2030, 1, 1, 10, 30, tzinfo=dt.UTC)) is None
    sunset = from_value({"solar": {"event": "sunset", "latitude": 52.52, "longitude": 13.405}})
    due = sunset.first_run(T)
    assert due is not None
    assert T < due < T + dt.timedelta(days=1)
    assert sunset.next_after(due) is None  # no change recorded: once


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"every": 5, "cron": "* * * * *"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"every": 5, "when": 1}, "exactly one of"),
        ({"every": 5, "after": "2030-01-01T09:00:00"}, "give the offset"),
        ({"every": 5, "after": "soon"}, "ISO 8601"),
        ({"cron": "61 * * * *"}, "61"),
        ({"solar": {"event": "moonrise", "latitude": 0, "longitude": 0}}, "moonrise"),
    ],
)
def test_bad_values_are_refused_naming_why(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_value(value)
    with pytest.raises(TypeError):
        from_value("every 5s")
