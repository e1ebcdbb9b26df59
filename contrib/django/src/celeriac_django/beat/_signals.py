"""Saves and deletes of entries and schedules move the change marker beat reads."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete
from django.db.models.signals import post_save

#: Stable ids, so connecting twice (a second ``ready()`` in tests) connects once.
_UID = "celeriac_django_beat.changed"


def connect() -> None:
    from celeriac_django.beat.models import ClockedSchedule
    from celeriac_django.beat.models import CrontabSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask
    from celeriac_django.beat.models import SolarSchedule

    for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
        post_save.connect(_changed, sender=model, dispatch_uid=f"{_UID}.save.{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"{_UID}.delete.{model.__name__}")


def _changed(sender: type[Any], using: str = "default", **kwargs: Any) -> None:
    from celeriac_django.beat.models import ScheduleVersion

    ScheduleVersion.bump(using)
