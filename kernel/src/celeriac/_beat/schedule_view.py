"""Beat's schedule as an operator sees it: every entry with its source, last and next run.

Read-only and for display (the dashboard's schedule page): it builds the entries beat
would run (code, the config file, the schedule store) and asks each schedule when it is
next due after its last recorded run. Editing goes through :class:`StoredSchedule`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen

from celeriac._beat.entries import load_entries
from celeriac._beat.entries import load_stored_entries
from celeriac._model.schedules import BeatConfig
from celeriac._model.schedules import zone

if TYPE_CHECKING:
    from celeriac._beat.schedule_edit import StoredSchedule


@frozen(kw_only=True)
class ScheduleRow:
    """One beat entry for display; ``table`` is set only for entries kept in the store
    (the ones an operator may edit or remove)."""

    name: str
    task: str
    source: str
    schedule: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str | None
    table: dict[str, Any] | None
    last_run: float | None
    next_run: float | None


def schedule_rows(stored: StoredSchedule, now: float) -> list[ScheduleRow]:
    """Every entry beat would run, sorted by name; an entry never run is shown due at its
    schedule's first time after ``now``."""
    config = stored.app.config.section("beat", BeatConfig)
    default_zone = zone(config.timezone)
    entries = {entry.name: entry for entry in load_entries(stored.app, config)}
    tables = stored.tables()
    for entry in load_stored_entries(stored.app, stored._store):
        entries[entry.name] = entry
    rows = []
    for name in sorted(entries):
        entry = entries[name]
        at = entry.timezone or default_zone
        last = stored.last_run_at(name)
        following = entry.schedule.next_after(dt.datetime.fromtimestamp(last if last else now, at))
        rows.append(
            ScheduleRow(
                name=name,
                task=entry.task,
                source=entry.source,
                schedule=str(entry.schedule),
                args=tuple(entry.args),
                kwargs=dict(entry.kwargs),
                queue=entry.queue,
                table=tables.get(name),
                last_run=last,
                next_run=None if following is None else following.timestamp(),
            )
        )
    return rows
