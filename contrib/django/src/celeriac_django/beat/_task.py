"""A beat entry kept in the database: which task, with what, on which schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.db import models

from celeriac_django.beat._marking import ChangeMarkingQuerySet
from celeriac_django.beat._schedules import ClockedSchedule
from celeriac_django.beat._schedules import CrontabSchedule
from celeriac_django.beat._schedules import IntervalSchedule
from celeriac_django.beat._schedules import SolarSchedule
from celeriac_django.beat._schedules import aware

SCHEDULE_FIELDS = ("interval", "crontab", "solar", "clocked")
MISSED = [("", "beat's default ([beat] missed)"), ("run_once", "Send one run"), ("skip", "Skip")]


def _schedule(model: type[models.Model], label: str) -> Any:
    # PROTECT: deleting a schedule still in use is refused (naming the entries), never a
    # silent cascade that deletes the entries with it.
    return models.ForeignKey(
        model,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="periodic_tasks",
        help_text=f"{label} (an entry has exactly one schedule).",
    )


class PeriodicTask(models.Model):
    """One beat entry, named ``name``; beat sends ``task`` with ``args``/``kwargs`` when due.

    A one-off entry (``one_off``, and every clocked entry) is disabled after its run. The
    run count and time are written by beat.
    """

    name = models.CharField(max_length=200, unique=True, help_text="The entry's name, unique.")
    task = models.CharField(
        max_length=200, help_text='The task\'s registered name, e.g. "proj.tasks.cleanup".'
    )
    interval = _schedule(IntervalSchedule, "Run at this interval")
    crontab = _schedule(CrontabSchedule, "Run at the times of this crontab")
    solar = _schedule(SolarSchedule, "Run at this solar event")
    clocked = _schedule(ClockedSchedule, "Run once, at this time")
    args = models.JSONField(default=list, blank=True, help_text='A JSON list, e.g. ["a", 1].')
    kwargs = models.JSONField(default=dict, blank=True, help_text='A JSON object, e.g. {"limit": 10}.')
    queue = models.CharField(
        max_length=200, blank=True, default="", help_text="Blank: the task's own routing."
    )
    priority = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(9)], help_text="0 to 9."
    )
    expire_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="A run not started this many seconds after it was sent is discarded.",
    )
    missed = models.CharField(
        max_length=16,
        choices=MISSED,
        blank=True,
        default="",
        help_text="What to do with runs missed while beat was down.",
    )
    one_off = models.BooleanField(default=False, help_text="Run once, then disable the entry.")
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    date_changed = models.DateTimeField(auto_now=True)

    objects = ChangeMarkingQuerySet.as_manager()

    class Meta:
        verbose_name = "periodic task"
        ordering = ("name",)

    def __str__(self) -> str:
        schedule = self.schedule
        return f"{self.name}: {schedule if schedule is not None else 'no schedule'}"

    @property
    def schedule(self) -> models.Model | None:
        """The one schedule set (None if none is)."""
        for name in SCHEDULE_FIELDS:
            found = getattr(self, name)
            if found is not None:
                return found
        return None

    def clean(self) -> None:
        chosen = [name for name in SCHEDULE_FIELDS if getattr(self, f"{name}_id") is not None]
        if not chosen:
            raise ValidationError("Set one schedule: interval, crontab, solar or clocked.")
        if len(chosen) > 1:
            message = f"Set only one schedule; this entry has {' and '.join(chosen)}."
            raise ValidationError(dict.fromkeys(chosen, message))
        problems: dict[str, str] = {}
        if not isinstance(self.args, list):
            problems["args"] = "Expected a JSON list, e.g. [1, 2]."
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(key, str) for key in self.kwargs):
            problems["kwargs"] = 'Expected a JSON object, e.g. {"limit": 10}.'
        if problems:
            raise ValidationError(problems)

    def table(self) -> dict[str, Any]:
        """The entry as its ``[beat.schedule.NAME]`` table, the form beat reads entries in."""
        table: dict[str, Any] = {"task": self.task, "args": self.args, "kwargs": self.kwargs}
        if self.queue:
            table["queue"] = self.queue
        if self.priority is not None:
            table["priority"] = self.priority
        if self.expire_seconds:
            table["expires"] = float(self.expire_seconds)
        if self.missed:
            table["missed"] = self.missed
        schedule = self.schedule
        if schedule is None:
            return table
        fields: dict[str, Any] = schedule.table()
        if self.one_off and self.clocked_id is None:
            # Run once, and once more after a later change (see celeriac_django.beat.oneoff).
            kind = next(key for key in fields if key != "timezone")
            once = {kind: fields.pop(kind)}
            if self.date_changed is not None:
                once["after"] = aware(self.date_changed).isoformat()
            fields["one_off"] = once
        table.update(fields)
        return table
