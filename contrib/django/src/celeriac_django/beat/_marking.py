"""Querysets whose bulk writes move the change marker, as single saves do through signals.

Without this, ``PeriodicTask.objects.filter(...).update(enabled=False)`` would change the
entries without beat noticing (Django sends no signal for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.utils import timezone

from celeriac_django.beat._state import ScheduleVersion


class ChangeMarkingQuerySet(models.QuerySet):
    """A queryset whose ``update``, ``bulk_create`` and ``bulk_update`` tell beat."""

    def update(self, **kwargs: Any) -> int:
        if any(field.name == "date_changed" for field in self.model._meta.fields):
            # As save() does through auto_now: a one-off entry re-enabled here runs again.
            kwargs.setdefault("date_changed", timezone.now())
        changed = super().update(**kwargs)
        if changed:
            ScheduleVersion.bump(self.db)
        return int(changed)

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            ScheduleVersion.bump(self.db)
        return list(created)

    def bulk_update(self, objs: Iterable[Any], fields: Any, *args: Any, **kwargs: Any) -> int:
        changed = super().bulk_update(objs, fields, *args, **kwargs)
        if changed:
            ScheduleVersion.bump(self.db)
        return int(changed)

    def update_quietly(self, **kwargs: Any) -> int:
        """``update`` without telling beat: for beat's own bookkeeping (run counts)."""
        return int(super().update(**kwargs))
