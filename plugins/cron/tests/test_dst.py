"""Crontab and DST: a 02:30 job on the days 02:30 does not exist and happens twice.

The behaviour (cronie's, through cronsim) in Europe/Berlin and America/New_York:

- spring forward: a fixed-time job in the skipped hour runs once, right after the jump (03:00);
- fall back: a fixed-time job in the repeated hour runs once, at its first occurrence;
- jobs whose minute or hour starts with ``*`` follow real time: each existing wall-clock
  match, so both passes of the repeated hour and nothing in the skipped one.

A property test compares the schedule with a brute-force reference of those rules.
"""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from celeriac_cron import Crontab
from celeriac_cron import crontab

# (zone, spring-forward day, fall-back day, the hour that happens twice that day). Both skip
# 02:00-03:00 in spring; in autumn Berlin repeats 02:00-03:00 and New York 01:00-02:00.
ZONES = [
    ("Europe/Berlin", date(2025, 3, 30), date(2025, 10, 26), 2),
    ("America/New_York", date(2025, 3, 9), date(2025, 11, 2), 1),
]


def _runs_on(schedule: Crontab, zone: ZoneInfo, day: date) -> list[datetime]:
    moment = datetime.combine(day - timedelta(days=1), datetime.min.time(), zone).replace(hour=12)
    runs: list[datetime] = []
    while True:
        nxt = schedule.next_after(moment)
        assert nxt is not None
        if nxt.date() > day:
            return runs
        if nxt.date() == day:
            runs.append(nxt)
        moment = nxt


@pytest.mark.parametrize(("name", "spring", "fall", "repeated"), ZONES)
def test_0230_on_spring_forward_day_runs_once_at_0300(
    name: str, spring: date, fall: date, repeated: int
) -> None:
    zone = ZoneInfo(name)
    runs = _runs_on(crontab("30 2 * * *"), zone, spring)
    assert [(run.hour, run.minute) for run in runs] == [(3, 0)]
    assert runs[0].astimezone(UTC) == datetime.combine(spring, datetime.min.time(), zone).replace(
        hour=3
    ).astimezone(UTC)


@pytest.mark.parametrize(("name", "spring", "fall", "repeated"), ZONES)
def test_repeated_time_on_fall_back_day_runs_once_at_first_occurrence(
    name: str, spring: date, fall: date, repeated: int
) -> None:
    zone = ZoneInfo(name)
    runs = _runs_on(crontab(f"30 {repeated} * * *"), zone, fall)
    assert [(run.hour, run.minute, run.fold) for run in runs] == [(repeated, 30, 0)]
    # The first occurrence: still on summer time, as at midnight.
    assert runs[0].utcoffset() == datetime.combine(fall, datetime.min.time(), zone).utcoffset()


@pytest.mark.parametrize(("name", "spring", "fall", "repeated"), ZONES)
def test_keyword_form_behaves_the_same(name: str, spring: date, fall: date, repeated: int) -> None:
    zone = ZoneInfo(name)
    assert [(r.hour, r.minute) for r in _runs_on(crontab(minute=30, hour=2), zone, spring)] == [(3, 0)]
    assert len(_runs_on(crontab(minute=30, hour=repeated), zone, fall)) == 1


def test_0230_in_new_york_on_its_fall_back_day_is_an_ordinary_time() -> None:
    runs = _runs_on(crontab("30 2 * * *"), ZoneInfo("America/New_York"), date(2025, 11, 2))
    assert [(run.hour, run.minute, run.utcoffset()) for run in runs] == [(2, 30, timedelta(hours=-5))]


def test_wildcard_hour_jobs_follow_real_time() -> None:
    zone = ZoneInfo("Europe/Berlin")
    spring = [
        (r.hour, r.fold) for r in _runs_on(crontab("30 * * * *"), zone, date(2025, 3, 30)) if r.hour < 5
    ]
    assert spring == [(0, 0), (1, 0), (3, 0), (4, 0)]  # no 02:30 that day
    fall = [(r.hour, r.fold) for r in _runs_on(crontab("30 * * * *"), zone, date(2025, 10, 26)) if r.hour < 5]
    assert fall == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 0), (4, 0)]  # 02:30 twice, an hour apart


def test_a_daily_job_runs_once_a_day_across_a_year_of_dst_changes() -> None:
    for name, *_ in ZONES:
        zone = ZoneInfo(name)
        for expression in ("30 2 * * *", "0 2 * * *", "59 1 * * *", "0 3 * * *"):
            moment = datetime(2025, 1, 1, tzinfo=zone)
            days = []
            while moment.year == 2025:
                nxt = crontab(expression).next_after(moment)
                assert nxt is not None
                days.append(nxt.date())
                moment = nxt
            assert len(days) == len(set(days)), (name, expression)
            assert len(days) == 366, (name, expression)  # every day of 2025, and 2026-01-01
