"""Property: the crontab schedule agrees with a brute-force reference of the documented rules
near DST changes in three zones (two northern, one southern).

The reference walks minute by minute. For a job whose minute and hour are fixed it walks
wall-clock time: a match in a skipped hour fires at the first wall-clock minute that exists
after it, a match in a repeated hour fires at its first occurrence. For a job whose minute or
hour starts with ``*`` it walks real time and fires at every existing match.
"""

from __future__ import annotations

import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from celeriac_cron import crontab

if os.environ.get("CI") == "true":
    import hypothesis  # CI must run the property tests: installed by 'plugins/cron[test]'
else:
    hypothesis = pytest.importorskip("hypothesis", reason="pip install -e 'plugins/cron[test]'")
st = hypothesis.strategies

ZONE_NAMES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
_LIMIT = timedelta(days=8)
_MINUTE = timedelta(minutes=1)


def _transitions(name: str) -> list[datetime]:
    """The instants (UTC) in 2025-2026 when the zone's offset changes."""
    zone = ZoneInfo(name)
    found = []
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment.year < 2027:
        later = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != later.astimezone(zone).utcoffset():
            found.append(later)
        moment = later
    return found


TRANSITIONS = {name: _transitions(name) for name in ZONE_NAMES}


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def reference_next(
    minutes: set[int], hours: set[int], days: set[int], fixed: bool, zone: ZoneInfo, moment: datetime
) -> datetime:
    def matches(wall: datetime) -> bool:
        return wall.minute in minutes and wall.hour in hours and (wall.isoweekday() % 7) in days

    after = moment.timestamp()
    if not fixed:
        instant = moment.astimezone(UTC).replace(second=0, microsecond=0)
        while instant - moment < _LIMIT:
            local = instant.astimezone(zone)
            if instant.timestamp() > after and matches(local.replace(tzinfo=None)):
                return local
            instant += _MINUTE
        raise AssertionError("no match within 8 days")
    wall = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    start = wall
    while wall - start < _LIMIT:
        if matches(wall):
            fires = wall
            while not _exists(fires, zone):
                fires += _MINUTE
            real = fires.replace(tzinfo=zone, fold=0)
            if real.timestamp() > after:
                return real
        wall += _MINUTE
    raise AssertionError("no match within 8 days")


def _field(
    draw: st.DrawFn, low: int, high: int, steps: tuple[int, ...], near: tuple[int, ...]
) -> tuple[str, set[int]]:
    # Fixed lists twice as often: they are the case with DST rules of their own.
    kind = draw(st.sampled_from(["list", "list", "step", "star"]))
    if kind == "star":
        return "*", set(range(low, high + 1))
    if kind == "step":
        step = draw(st.sampled_from(steps))
        return f"*/{step}", set(range(low, high + 1, step))
    values = draw(st.sets(st.sampled_from(near) | st.integers(low, high), min_size=1, max_size=3))
    return ",".join(str(v) for v in sorted(values)), values


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, set[int], set[int], set[int], bool, ZoneInfo, datetime]:
    minute, minutes = _field(draw, 0, 59, (5, 15, 20, 30), (0, 15, 30, 45, 59))
    hour, hours = _field(draw, 0, 23, (2, 3), (0, 1, 2, 3))
    kind = draw(st.sampled_from(["star", "list"]))
    if kind == "star":
        dow, days = "*", set(range(7))
    else:
        days = draw(st.sets(st.integers(0, 6), min_size=1, max_size=3))
        dow = ",".join(str(d) for d in sorted(days))
    name = draw(st.sampled_from(ZONE_NAMES))
    zone = ZoneInfo(name)
    transition = draw(st.sampled_from(TRANSITIONS[name]))
    # Mostly within hours of the change, where the rules differ from a plain walk.
    offset = draw(st.integers(-6 * 3600, 6 * 3600) | st.integers(-36 * 3600, 36 * 3600))
    moment = (transition + timedelta(seconds=offset)).astimezone(zone)
    fixed = not minute.startswith("*") and not hour.startswith("*")
    return f"{minute} {hour} * * {dow}", minutes, hours, days, fixed, zone, moment


@hypothesis.settings(max_examples=250, deadline=None, derandomize=True, database=None)
@hypothesis.given(cases())
def test_matches_the_reference_near_dst_changes(
    case: tuple[str, set[int], set[int], set[int], bool, ZoneInfo, datetime],
) -> None:
    expression, minutes, hours, days, fixed, zone, moment = case
    found = crontab(expression).next_after(moment)
    expected = reference_next(minutes, hours, days, fixed, zone, moment)
    assert found is not None
    assert found.timestamp() == expected.timestamp(), (expression, moment.isoformat(), found.isoformat())
    assert found.timestamp() > moment.timestamp()


def test_every_zone_has_its_changes() -> None:
    assert all(len(TRANSITIONS[name]) == 4 for name in ZONE_NAMES)
