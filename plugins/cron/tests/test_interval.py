"""The ``every`` schedule: durations, and real-time intervals across DST changes."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from celeriac_cron import Every
from celeriac_cron import every
from celeriac_cron import parse_duration

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("250ms", 0.25),
        ("1.5h", 5400),
        (90, 90),
        (0.5, 0.5),
        (timedelta(minutes=2), 120),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "30", "30x", "m5", "1h-30m", "0s", -5, 0, float("nan"), float("inf")])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [True, None, [30]])
def test_wrong_types(bad: object) -> None:
    with pytest.raises(TypeError):
        parse_duration(bad)


def test_next_is_one_interval_of_real_time_across_spring_forward() -> None:
    schedule = every("1h")
    before = datetime(2025, 3, 30, 1, 30, tzinfo=BERLIN)  # 02:00 CET becomes 03:00 CEST
    after = schedule.next_after(before)
    assert after is not None
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=1)
    assert (after.hour, after.minute) == (3, 30)


def test_next_is_one_interval_of_real_time_across_fall_back() -> None:
    schedule = every("30m")
    moment = datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)  # first 02:45 (CEST)
    after = schedule.next_after(moment)
    assert after is not None
    assert after.astimezone(UTC) - moment.astimezone(UTC) == timedelta(minutes=30)
    assert (after.hour, after.minute, after.fold) == (2, 15, 1)  # the repeated hour


def test_first_run_is_one_interval_after_start() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert every("10s").first_run(start) == start + timedelta(seconds=10)
    assert str(Every(timedelta(seconds=90))) == "every 90s"
