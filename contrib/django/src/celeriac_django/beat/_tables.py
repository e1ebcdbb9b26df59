"""An entry given as its ``[beat.schedule.NAME]`` table (``celeriac beat schedule add``,
the dashboard) saved as a :class:`~celeriac_django.beat.models.PeriodicTask` and its schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celeriac.plugin import ConfigError

_OPTIONS = ("task", "args", "kwargs", "queue", "priority", "expires", "missed")


def save_entry(alias: str, name: str, table: Mapping[str, Any]) -> None:
    """Add or replace the entry ``name`` (already checked by beat's rules).

    :raises ConfigError: for what the models cannot hold (a time zone on a schedule other
        than cron, an expiry that is not whole seconds).
    """
    from django.db import transaction

    from celeriac_django.beat.models import PeriodicTask
    from celeriac_django.beat.models import ScheduleVersion

    unknown = sorted(set(table) - {*_OPTIONS, "timezone", "every", "cron", "solar", "clocked"})
    if unknown:
        raise ConfigError(f"beat entry {name!r}: the django:// store cannot keep {', '.join(unknown)}")
    expires = table.get("expires")
    if expires is not None and float(expires) != int(expires):
        raise ConfigError(f"beat entry {name!r}: the django:// store keeps expires in whole seconds")
    with transaction.atomic(using=alias):
        # The change marker moves with the save anyway; moved first, it is a write before any
        # read, so on SQLite the transaction waits out another writer (see store._put_run).
        ScheduleVersion.bump(alias)
        schedule = _schedule(alias, name, table)
        fields: dict[str, Any] = {
            "task": table["task"],
            "args": list(table.get("args", [])),
            "kwargs": dict(table.get("kwargs", {})),
            "queue": table.get("queue") or "",
            "priority": table.get("priority"),
            "expire_seconds": None if expires is None else int(expires),
            "missed": table.get("missed") or "",
            "enabled": True,
            "interval": None,
            "crontab": None,
            "solar": None,
            "clocked": None,
            **schedule,
        }
        PeriodicTask.objects.using(alias).update_or_create(name=name, defaults=fields)


def _schedule(alias: str, name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    from celeriac_cron import crontab
    from celeriac_cron import parse_duration
    from celeriac_django.beat.models import ClockedSchedule
    from celeriac_django.beat.models import CrontabSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import SolarSchedule

    if "timezone" in table and "cron" not in table:
        raise ConfigError(f"beat entry {name!r}: the django:// store keeps a time zone for cron entries only")
    if "every" in table:
        micros = round(parse_duration(table["every"]).total_seconds() * 1_000_000)
        every, period = (
            (micros // 1_000_000, "seconds") if micros % 1_000_000 == 0 else (micros, "microseconds")
        )
        found, _ = IntervalSchedule.objects.using(alias).get_or_create(every=every, period=period)
        return {"interval": found}
    if "cron" in table:
        value = table["cron"]
        if isinstance(value, str):
            minute, hour, day_of_month, month_of_year, day_of_week = crontab(value).expression.split()
            value = {
                "minute": minute,
                "hour": hour,
                "day_of_month": day_of_month,
                "month_of_year": month_of_year,
                "day_of_week": day_of_week,
            }
        fields = {key: _cron_field(field) for key, field in value.items()}
        found, _ = CrontabSchedule.objects.using(alias).get_or_create(
            **fields, timezone=table.get("timezone", "UTC")
        )
        return {"crontab": found}
    if "solar" in table:
        solar, _ = SolarSchedule.objects.using(alias).get_or_create(**dict(table["solar"]))
        return {"solar": solar}
    clocked = ClockedSchedule.objects.using(alias).create(clocked_time=table["clocked"])
    return {"clocked": clocked}


def _cron_field(value: Any) -> str:
    """One of Celery's crontab fields as the model keeps it: ``[0, 30]`` is ``"0,30"``."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)
