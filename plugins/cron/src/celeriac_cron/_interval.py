"""``every``: a fixed interval of real time, such as ``"30s"``, ``"5m"``, ``"1h30m"`` or 90."""

from __future__ import annotations

import math
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import final

from attrs import frozen

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_TERM = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


def parse_duration(value: Any) -> timedelta:
    """``"1h30m"``, ``"45s"``, ``"250ms"``, ``"2d"``, a number of seconds or a timedelta.

    :raises ValueError: for anything else, zero or a negative duration.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.replace(" ", "").lower()
        terms = _TERM.findall(text)
        if not text or "".join(number + unit for number, unit in terms) != text:
            raise ValueError(
                "expected a duration such as '30s', '5m', '1h30m', '2d' or '250ms' "
                "(units w, d, h, m, s, ms), or a number of seconds"
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in terms)
    else:
        raise TypeError("expected a duration such as '30s' or '1h30m', or a number of seconds")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("the interval must be longer than 0 seconds")
    return timedelta(seconds=seconds)


@final
@frozen
class Every:
    """Due every ``interval`` of real time, whatever the wall clock does across DST changes.

    A new entry first runs one interval after beat starts (as in Celery); then each run is
    one interval after the previous run's scheduled time, so the cadence does not drift.
    """

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        # Arithmetic on an aware datetime is wall-clock arithmetic in Python: across a DST
        # change "+1 hour" would be 0 or 2 real hours. Counting in UTC keeps it real time.
        return (moment.astimezone(UTC) + self.interval).astimezone(moment.tzinfo)

    def first_run(self, start: datetime) -> datetime:
        return self.next_after(start)

    def __str__(self) -> str:
        return f"every {self.interval.total_seconds():g}s"


def every(value: str | float | timedelta) -> Every:
    """An interval schedule: ``every("30s")``, ``every(90)``, ``every(timedelta(hours=1))``."""
    return Every(parse_duration(value))
