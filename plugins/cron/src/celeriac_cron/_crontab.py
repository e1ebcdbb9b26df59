"""``cron``: the five-field crontab string, or Celery's keyword fields, computed by cronsim.

cronsim does the iteration and follows Debian cron / cronie across DST changes:

- a job at a fixed time that falls in the hour skipped in spring (02:30 on the day clocks go
  from 02:00 to 03:00) runs right after the jump, at 03:00;
- a job at a fixed time in the hour repeated in autumn runs once, at the first occurrence;
- a job whose minute or hour field starts with ``*`` (``*/15 * * * *``, ``0 * * * *``) runs
  by real time: every matching wall-clock time that exists, so twice in the repeated hour
  and not at all in the skipped one.

Written here, because cronsim does not: Celery's keyword form, whose day-of-month and
day-of-week must *both* match when both are given (cron takes either), whose ranges may
wrap around (``fri-mon``, ``22-2``) and whose names may be spelled out (``monday``); and the
``@daily``-style nicknames.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from typing import final

from attrs import frozen
from cronsim import CronSim
from cronsim import CronSimError

FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_BOUNDS = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month_of_year": (1, 12),
    "day_of_week": (0, 7),
}
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    "day_of_week": {name: number for number, name in enumerate(_DAYS)},
    "month_of_year": {name: number for number, name in enumerate(_MONTHS, start=1)},
}
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Days a Celery-style day-of-month AND day-of-week search may skip: Friday the 13th is at
#: most 14 months away, 29 February on a Monday 28 years.
_MAX_SKIPPED_DAYS = 1600
_MAX_CANDIDATES = 10_000


@final
@frozen
class Crontab:
    """A crontab schedule in the zone of the moment it is asked about.

    :param expression: five fields handed to cronsim.
    :param day_of_month: with Celery's keyword form, a day-of-month that must match as well
        as the expression's day of week (which then has ``*`` as its day of month).
    """

    expression: str
    day_of_month: str | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        if moment.tzinfo is None:
            raise ValueError("a crontab needs an aware datetime")
        start = moment
        for _ in range(_MAX_SKIPPED_DAYS):
            found = _next(self.expression, start, moment)
            if found is None:
                return None
            if self.day_of_month is None or _day_matches(self.day_of_month, found):
                return found
            # Not on this day: go on from the end of it.
            end_of_day = found.replace(hour=23, minute=59, second=59, microsecond=0, fold=0)
            start = max(found, end_of_day, key=datetime.timestamp)
        return None

    def first_run(self, start: datetime) -> datetime | None:
        return self.next_after(start)

    def __str__(self) -> str:
        if self.day_of_month is None:
            return f"cron {self.expression!r}"
        return f"cron {self.expression!r} on day of month {self.day_of_month}"


def _next(expression: str, start: datetime, moment: datetime) -> datetime | None:
    # For fixed-time jobs cronsim counts in naive wall time and answers the first occurrence
    # of a repeated time, which can be before a ``moment`` in the second pass of that hour:
    # such answers are passed over. Compared as instants: Python compares two datetimes of one
    # zone by wall time, ignoring ``fold``, so the second 02:30 would not be after the first.
    after = moment.timestamp()
    for candidate in itertools.islice(CronSim(expression, start), _MAX_CANDIDATES):
        if candidate.timestamp() > after:
            return candidate
    return None


def _day_matches(day_of_month: str, moment: datetime) -> bool:
    midnight = datetime.combine(moment.date(), time(), UTC)
    return next(CronSim(f"0 0 {day_of_month} * *", midnight - timedelta(seconds=1)), None) == midnight


def crontab(
    expression: str | None = None,
    *,
    minute: Any = "*",
    hour: Any = "*",
    day_of_week: Any = "*",
    day_of_month: Any = "*",
    month_of_year: Any = "*",
) -> Crontab:
    """``crontab("30 2 * * *")``, or Celery's ``crontab(minute=0, hour="9-17", day_of_week="mon-fri")``.

    :raises ValueError: naming the field that is wrong, or when the schedule never matches.
    """
    if expression is not None:
        return from_string(expression)
    return from_fields(
        {
            "minute": minute,
            "hour": hour,
            "day_of_week": day_of_week,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
        }
    )


def from_value(value: Any) -> Crontab:
    """The factory of the ``cron`` TOML key: a string or a table of keyword fields."""
    if isinstance(value, str):
        return from_string(value)
    if isinstance(value, Mapping):
        return from_fields(value)
    raise TypeError("expected a crontab string such as '*/5 * * * *' or a table of fields (minute, hour ...)")


def from_string(expression: str) -> Crontab:
    text = _NICKNAMES.get(expression.strip().lower(), expression.strip())
    if len(text.split()) != 5:
        raise ValueError("expected five fields: minute hour day-of-month month day-of-week (or @daily ...)")
    return _checked(Crontab(text))


def from_fields(fields: Mapping[str, Any]) -> Crontab:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    spec = {name: celery_field(fields.get(name, "*"), name) for name in FIELDS}
    both = spec["day_of_month"] != "*" and spec["day_of_week"] != "*"
    day = "*" if both else spec["day_of_month"]
    text = f"{spec['minute']} {spec['hour']} {day} {spec['month_of_year']} {spec['day_of_week']}"
    return _checked(Crontab(text, spec["day_of_month"] if both else None))


def _checked(schedule: Crontab) -> Crontab:
    try:
        CronSim(schedule.expression, datetime(2000, 1, 1, tzinfo=UTC))
        if schedule.day_of_month is not None:
            CronSim(f"0 0 {schedule.day_of_month} * *", datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"{exc} in {schedule.expression!r}") from None
    if schedule.next_after(datetime.now(UTC)) is None:
        raise ValueError(f"{schedule} never matches a date")
    return schedule


def celery_field(value: Any, field: str) -> str:
    """One of Celery's keyword fields as a cron field: numbers, names, lists, ranges (also
    wrapping around), steps and ``*``."""
    if isinstance(value, bool):
        raise TypeError(f"{field}: expected a number, a string or a list")
    if isinstance(value, int):
        return str(_number(str(value), field))
    if isinstance(value, list | tuple | set | frozenset):
        if not value:
            raise ValueError(f"{field}: an empty list never matches")
        return ",".join(celery_field(item, field) for item in sorted(value, key=str))
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected a number, a string or a list")
    terms = []
    for term in value.replace(" ", "").lower().split(","):
        body, slash, step = term.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            raise ValueError(f"{field}: bad step in {term!r}")
        suffix = f"/{step}" if slash else ""
        if body == "*":
            terms.append(body + suffix)
            continue
        first, dash, last = body.partition("-")
        start = _number(first, field)
        if not dash:
            terms.append(f"{start}{suffix}")
            continue
        end = _number(last, field)
        if start <= end:
            terms.append(f"{start}-{end}{suffix}")
            continue
        low, high = _BOUNDS[field]
        high = 6 if field == "day_of_week" else high
        values = [*range(start, high + 1), *range(low, end + 1)][:: int(step) if slash else 1]
        terms.append(",".join(str(number) for number in values))
    return ",".join(terms)


def _number(text: str, field: str) -> int:
    names = _NAMES.get(field, {})
    if text.isdigit():
        number = int(text)
    elif len(text) >= 3 and text[:3] in names:
        number = names[text[:3]]
    else:
        known = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{field}: {text!r} is not a number{known}")
    low, high = _BOUNDS[field]
    if not low <= number <= high:
        raise ValueError(f"{field}: {number} is outside {low}-{high}")
    return number
