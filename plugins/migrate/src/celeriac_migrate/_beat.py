"""``beat_schedule`` entries as ``[beat.schedule.NAME]`` tables (celeriac-cron's schedule keys)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta
from typing import Any

from celeriac_migrate._context import Context
from celeriac_migrate._context import seconds

#: Celery's ``crontab`` fields, as celeriac-cron's keyword table names them.
_CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
#: ``options`` of an entry that a celeriac entry has; the others are listed.
_ENTRY_OPTIONS = ("queue", "priority", "expires")


def schedule(context: Context) -> None:
    """Each entry of ``beat_schedule`` (those ``add_periodic_task`` added included)."""
    entries = context.settings.get("beat_schedule") or {}
    for name, entry in entries.items():
        context.current = f"beat_schedule[{name!r}]"
        table = _entry(context, str(name), dict(entry))
        if table is not None:
            context.put(("beat", "schedule", str(name)), table)


def _entry(context: Context, name: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    setting = f"beat_schedule[{name!r}]"
    kind, value, why = _schedule(entry.get("schedule"))
    if kind is None:
        context.skip(setting, why, entry.get("schedule"))
        return None
    table: dict[str, Any] = {"task": str(entry["task"]), kind: value}
    if entry.get("args"):
        table["args"] = list(entry["args"])
    if entry.get("kwargs"):
        table["kwargs"] = dict(entry["kwargs"])
    for option, option_value in dict(entry.get("options") or {}).items():
        if option == "expires" and isinstance(option_value, datetime):
            context.skip(
                f"{setting}['options']['expires']",
                "an instant: entries expire seconds after each run",
                option_value,
            )
        elif option in _ENTRY_OPTIONS and option_value is not None:
            table[option] = _option(option, option_value)
        else:
            context.skip(
                f"{setting}['options'][{option!r}]",
                "beat entries take queue, priority, expires",
                option_value,
            )
    if entry.get("relative"):
        context.skip(
            f"{setting}['relative']", "intervals count from beat's start, not rounded to the clock", True
        )
    return table


def _schedule(value: Any) -> tuple[str | None, Any, str]:
    """(celeriac-cron key, its value, why not) for a Celery schedule."""
    from celery.schedules import crontab
    from celery.schedules import schedule
    from celery.schedules import solar

    if isinstance(value, int | float | timedelta):
        return "every", seconds(value), ""
    if isinstance(value, crontab):
        # The keyword table, not a five-field string: Celery's crontab needs day of month AND
        # day of week to match, as celeriac-cron's table does (cron strings match either).
        fields = {name: _cron_field(getattr(value, f"_orig_{name}")) for name in _CRON_FIELDS}
        return "cron", {k: v for k, v in fields.items() if v != "*"} or {"minute": "*"}, ""
    if isinstance(value, solar):
        return "solar", {"event": value.event, "latitude": value.lat, "longitude": value.lon}, ""
    if type(value) is schedule:
        return "every", seconds(value.run_every), ""
    return None, None, f"a {type(value).__name__} schedule: celeriac-cron has every, cron, solar and clocked"


def _cron_field(value: Any) -> int | str:
    if isinstance(value, int | str):
        return value
    if isinstance(value, Iterable):
        return ",".join(str(part) for part in sorted(value))
    return str(value)


def _option(option: str, value: Any) -> Any:
    if option == "expires":
        return seconds(value)
    return int(value) if option == "priority" else str(value)
