"""``clocked``: a one-off run at a date and time."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import Any
from typing import final

from attrs import frozen


@final
@frozen
class Clocked:
    """Due once, at ``at``. A naive ``at`` is a wall-clock time in beat's (or the entry's) zone;
    one in the hour skipped by a DST change is read with the offset before the change (02:30
    on a spring-forward day is 03:30), one in the repeated hour as its first occurrence.

    If beat was not running at that time, the entry's missed-run policy decides: ``run_once``
    sends it when beat starts, ``skip`` never does.
    """

    at: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        at = self._in(moment)
        # As instants: within one zone Python compares wall times and ignores ``fold``.
        return at if at.timestamp() > moment.timestamp() else None

    def first_run(self, start: datetime) -> datetime:
        return self._in(start)

    def _in(self, moment: datetime) -> datetime:
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=moment.tzinfo, fold=0)
        return at.astimezone(moment.tzinfo)

    def __str__(self) -> str:
        return f"once at {self.at.isoformat()}"


def clocked(at: datetime | str) -> Clocked:
    """``clocked(datetime(2030, 1, 1, 9))`` or ``clocked("2030-01-01T09:00:00+01:00")``."""
    return from_value(at)


def from_value(value: Any) -> Clocked:
    """The factory of the ``clocked`` TOML key: a TOML date-time or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 date and time, e.g. 2030-01-01T09:00:00") from None
    if isinstance(value, datetime):
        return Clocked(value)
    if isinstance(value, date):
        raise ValueError("a date alone is not enough: give a time too, e.g. 2030-01-01T09:00:00")
    raise TypeError("expected a date and time, e.g. clocked = 2030-01-01T09:00:00")
