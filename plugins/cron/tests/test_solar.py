"""The ``solar`` schedule: astral's events, polar days, and argument checks."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral import sun

from celeriac_cron import EVENTS
from celeriac_cron import solar
from celeriac_cron._solar import from_value

BERLIN = Observer(latitude=52.52, longitude=13.405)


def test_sunset_in_berlin_is_astrals() -> None:
    moment = datetime(2025, 6, 21, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    found = solar("sunset", 52.52, 13.405).next_after(moment)
    assert found == sun.sunset(BERLIN, date(2025, 6, 21), tzinfo=UTC)
    assert found is not None and found.tzinfo == moment.tzinfo  # given back in the moment's zone
    assert 21 <= found.hour <= 22


def test_next_day_once_todays_event_passed() -> None:
    moment = datetime(2025, 6, 21, 23, 0, tzinfo=UTC)
    found = solar("sunrise", 52.52, 13.405).next_after(moment)
    assert found == sun.sunrise(BERLIN, date(2025, 6, 22), tzinfo=UTC)


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_has_a_time_at_the_equinox(event: str) -> None:
    schedule = solar(event, 52.52, 13.405)
    first = schedule.next_after(datetime(2025, 3, 20, tzinfo=UTC))
    assert first is not None
    second = schedule.next_after(first)
    assert second is not None
    assert 23 * 3600 < (second - first).total_seconds() < 25 * 3600


def test_no_astronomical_dusk_in_a_northern_summer_means_the_next_day_that_has_one() -> None:
    found = solar("dusk_astronomical", 52.52, 13.405).next_after(datetime(2025, 6, 21, tzinfo=UTC))
    assert found is not None and found.date() > date(2025, 7, 10)


def test_polar_night_waits_for_the_first_sunrise() -> None:
    found = solar("sunrise", 78.22, 15.65).next_after(datetime(2025, 12, 1, tzinfo=UTC))  # Longyearbyen
    assert found is not None and found.date() > date(2026, 2, 10)


def test_from_toml_table() -> None:
    assert from_value({"event": "dawn", "latitude": 10, "longitude": -20}) == solar("dawn", 10.0, -20.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"event": "moonrise", "latitude": 0, "longitude": 0}, "unknown solar event 'moonrise'"),
        ({"event": "dawn", "latitude": 91, "longitude": 0}, "latitude 91 is outside -90 to 90"),
        ({"event": "dawn", "latitude": 0, "longitude": -181}, "longitude -181 is outside"),
        ({"event": "dawn", "latitude": 0}, "missing longitude"),
        ({"event": "dawn", "latitude": 0, "longitude": 0, "elevation": 3}, "unknown key 'elevation'"),
    ],
)
def test_errors(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_value(value)


@pytest.mark.parametrize("value", ["sunset", {"event": "dawn", "latitude": "north", "longitude": 0}])
def test_wrong_types(value: object) -> None:
    with pytest.raises(TypeError):
        from_value(value)
