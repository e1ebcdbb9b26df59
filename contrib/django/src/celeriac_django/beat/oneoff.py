"""``one_off``: a schedule type that runs an interval, crontab or solar entry once.

A one-off entry (``PeriodicTask.one_off``) must not run a second time in the second before
beat re-reads the entries that its first run disabled, so the schedule itself ends after
one run. It runs once more when the entry changed after that run (re-enabled or edited):
``after`` is the entry's last change. In TOML::

    [beat.schedule.warm-cache]
    task = "proj.tasks.warm"
    one_off = { every = "10m", after = "2030-01-01T09:00:00+00:00" }

Importing this module imports nothing of Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import Schedule

_KINDS = ("every", "cron", "solar")


@final
@frozen
class OneOff:
    """Due once, at ``schedule``'s first time; again once if the entry changed after its run."""

    schedule: Schedule
    after: datetime | None = None

    def first_run(self, start: datetime) -> datetime | None:
        # Never before the last change: an entry added or re-enabled while beat runs is first
        # due one interval (or the next cron or solar time) after that change.
        if self.after is not None and self.after.timestamp() > start.timestamp():
            start = self.after.astimezone(start.tzinfo)
        return self.schedule.first_run(start)

    def next_after(self, moment: datetime) -> datetime | None:
        if self.after is None or moment.timestamp() >= self.after.timestamp():
            return None  # ran since the last change: done
        return self.first_run(moment)

    def __str__(self) -> str:
        return f"once, {self.schedule}"


def from_value(value: Any) -> OneOff:
    """The factory of the ``one_off`` key: a table of one of ``every``, ``cron``, ``solar``,
    and optionally ``after`` (an ISO 8601 time with an offset)."""
    from celeriac_cron import crontab
    from celeriac_cron import every
    from celeriac_cron import solar

    if not isinstance(value, Mapping):
        raise TypeError("expected a table such as { every = '10m' }")
    unknown = sorted(set(value) - {*_KINDS, "after"})
    kinds = [kind for kind in _KINDS if kind in value]
    if unknown or len(kinds) != 1:
        raise ValueError(f"expected exactly one of {', '.join(_KINDS)}, and optionally after")
    kind = kinds[0]
    inner = value[kind]
    schedule: Schedule
    if kind == "every":
        schedule = every(inner)
    elif kind == "cron":
        schedule = crontab(inner) if isinstance(inner, str) else crontab(**dict(inner))
    else:
        if not isinstance(inner, Mapping):
            raise TypeError("solar: expected { event = 'sunset', latitude = 52.5, longitude = 13.4 }")
        schedule = solar(inner.get("event", ""), inner.get("latitude", 0), inner.get("longitude", 0))
    after = value.get("after")
    if after is not None:
        try:
            after = datetime.fromisoformat(str(after))
        except ValueError:
            raise ValueError(f"after = {after!r}: expected an ISO 8601 time") from None
        if after.tzinfo is None:
            raise ValueError(f"after = {value['after']!r}: give the offset, e.g. +00:00")
    return OneOff(schedule, after)
