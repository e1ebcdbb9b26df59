"""The four kinds of schedule an entry points to: interval, crontab, solar and clocked.

Each checks itself with celeriac-cron, the plugin beat computes them with, so what the admin
accepts is what beat runs; each gives its ``[beat.schedule.NAME]`` table fields through
``table()``.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from celeriac_django.beat._marking import ChangeMarkingQuerySet

PERIODS = [
    ("days", "Days"),
    ("hours", "Hours"),
    ("minutes", "Minutes"),
    ("seconds", "Seconds"),
    ("microseconds", "Microseconds"),
]
#: Celery's solar events, with celeriac's short names for the civil ones.
SOLAR_EVENTS = [
    ("dawn_astronomical", "Astronomical dawn"),
    ("dawn_nautical", "Nautical dawn"),
    ("dawn_civil", "Civil dawn"),
    ("sunrise", "Sunrise"),
    ("solar_noon", "Solar noon"),
    ("sunset", "Sunset"),
    ("dusk_civil", "Civil dusk"),
    ("dusk_nautical", "Nautical dusk"),
    ("dusk_astronomical", "Astronomical dusk"),
]
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


class IntervalSchedule(models.Model):
    """Every ``every`` ``period`` of real time (``every=30, period="seconds"``)."""

    every = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="Number of periods between two runs."
    )
    period = models.CharField(max_length=24, choices=PERIODS, default="seconds")

    objects = ChangeMarkingQuerySet.as_manager()

    class Meta:
        verbose_name = "interval"
        ordering = ("period", "every")

    def __str__(self) -> str:
        unit = self.period if self.every != 1 else self.period.removesuffix("s")
        return f"every {self.every} {unit}"

    @property
    def interval(self) -> timedelta:
        return timedelta(**{self.period: self.every})

    def table(self) -> dict[str, Any]:
        return {"every": self.interval.total_seconds()}

    def clean(self) -> None:
        if self.every is not None and self.every < 1:
            raise ValidationError({"every": "An interval is at least one period."})


def check_zone(value: str) -> None:
    """A Django validator: an IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a time zone (IANA names such as 'Europe/Berlin')") from None


class CrontabSchedule(models.Model):
    """Celery's crontab fields (``minute="0", hour="9-17", day_of_week="mon-fri"``), read in ``timezone``.

    As in Celery, when both day of month and day of week are given, both must match.
    """

    minute = models.CharField(max_length=240, default="*", help_text='Example: "0,30" or "*/15".')
    hour = models.CharField(max_length=96, default="*", help_text='Example: "8,20" or "9-17".')
    day_of_month = models.CharField(max_length=124, default="*", help_text='Example: "1,15".')
    month_of_year = models.CharField(max_length=64, default="*", help_text='Example: "1,7" or "jan-mar".')
    day_of_week = models.CharField(max_length=64, default="*", help_text='Example: "mon-fri" or "0,6".')
    timezone = models.CharField(
        max_length=63, default="UTC", validators=[check_zone], help_text="An IANA name such as Europe/Berlin."
    )

    objects = ChangeMarkingQuerySet.as_manager()

    class Meta:
        verbose_name = "crontab"
        ordering = ("month_of_year", "day_of_month", "day_of_week", "hour", "minute", "timezone")

    def __str__(self) -> str:
        fields = " ".join(str(getattr(self, name)) or "*" for name in CRON_FIELDS)
        return f"{fields} (m h dom mon dow) {self.timezone}"

    def fields(self) -> dict[str, str]:
        return {name: str(getattr(self, name)).strip() or "*" for name in CRON_FIELDS}

    def table(self) -> dict[str, Any]:
        return {"cron": self.fields(), "timezone": self.timezone}

    def clean(self) -> None:
        from celeriac_cron import crontab

        fields = self.fields()
        problems: dict[str, str] = {}
        for name, value in fields.items():  # a field wrong on its own is named as the one
            try:
                crontab(**{name: value})
            except ValueError as exc:
                problems[name] = f"Not a valid crontab field: {exc}"
        if problems:
            raise ValidationError(problems)
        try:
            crontab(**fields)
        except ValueError as exc:
            raise ValidationError(f"Not a valid crontab: {exc}") from None


class SolarSchedule(models.Model):
    """A solar event (sunrise, sunset, dawn ...) each day at a place; north and east are positive."""

    event = models.CharField(max_length=24, choices=SOLAR_EVENTS)
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )

    objects = ChangeMarkingQuerySet.as_manager()

    class Meta:
        verbose_name = "solar event"
        ordering = ("event", "latitude", "longitude")
        constraints = [
            models.UniqueConstraint(
                fields=("event", "latitude", "longitude"), name="celeriac_beat_solar_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} at {self.latitude}, {self.longitude}"

    def table(self) -> dict[str, Any]:
        return {
            "solar": {
                "event": self.event,
                "latitude": _degrees(self.latitude),
                "longitude": _degrees(self.longitude),
            }
        }

    def clean(self) -> None:
        from celeriac_cron import solar

        if self.latitude is None or self.longitude is None or not self.event:
            return  # the fields' own errors name what is missing
        try:
            solar(self.event, _degrees(self.latitude), _degrees(self.longitude))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Not a valid solar schedule: {exc}") from None


class ClockedSchedule(models.Model):
    """Once, at ``clocked_time``: an entry with this schedule runs one time and is then disabled."""

    clocked_time = models.DateTimeField(help_text="When the task runs.")

    objects = ChangeMarkingQuerySet.as_manager()

    class Meta:
        verbose_name = "clocked"
        verbose_name_plural = "clocked"
        ordering = ("clocked_time",)

    def __str__(self) -> str:
        return str(self.clocked_time.isoformat())

    def table(self) -> dict[str, Any]:
        return {"clocked": aware(self.clocked_time).isoformat()}


def aware(moment: datetime) -> datetime:
    """``moment`` with its zone: a naive one (``USE_TZ = False``) is in Django's ``TIME_ZONE``."""
    return moment if moment.tzinfo is not None else timezone.make_aware(moment)


def _degrees(value: Decimal | float | str) -> float:
    return float(value)
