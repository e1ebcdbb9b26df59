"""The ``clocked`` schedule: one run at a date and time."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from celeriac_cron import Clocked
from celeriac_cron import clocked
from celeriac_cron._clocked import from_value

BERLIN = ZoneInfo("Europe/Berlin")


def test_due_once() -> None:
    schedule = clocked(datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    before = datetime(2029, 12, 31, tzinfo=UTC)
    assert schedule.next_after(before) == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    assert schedule.next_after(datetime(2030, 1, 1, 9, 0, tzinfo=UTC)) is None


def test_a_naive_time_is_read_in_the_zone_asked_about() -> None:
    schedule = clocked(datetime(2030, 1, 1, 9, 0))
    found = schedule.next_after(datetime(2029, 12, 31, tzinfo=BERLIN))
    assert found is not None and found.astimezone(UTC) == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


def test_first_run_is_its_time_even_when_past() -> None:
    at = datetime(2020, 1, 1, tzinfo=UTC)
    assert clocked(at).first_run(datetime(2025, 1, 1, tzinfo=UTC)) == at


def test_the_second_of_two_equal_wall_times_is_after_the_first() -> None:
    first = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN)  # CEST
    second = first.replace(fold=1)  # CET, an hour later
    assert clocked(second).next_after(first) == second
    assert clocked(first).next_after(second) is None


def test_a_naive_time_in_the_skipped_hour_uses_the_offset_before_the_change() -> None:
    found = clocked(datetime(2025, 3, 30, 2, 30)).first_run(datetime(2025, 3, 29, tzinfo=BERLIN))
    assert found.astimezone(UTC) == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 CEST


def test_from_toml_values() -> None:
    assert from_value(datetime(2030, 1, 1, 9)) == Clocked(datetime(2030, 1, 1, 9))
    assert from_value("2030-01-01T09:00:00+01:00").at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(("value", "message"), [(date(2030, 1, 1), "a date alone"), ("soon", "ISO 8601")])
def test_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_value(value)


def test_wrong_type() -> None:
    with pytest.raises(TypeError):
        from_value(12)
