"""The admin pages of the beat schedule: entries, their schedules, and beat's runs (read only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest

from celeriac_django.beat.models import BeatRun
from celeriac_django.beat.models import ClockedSchedule
from celeriac_django.beat.models import CrontabSchedule
from celeriac_django.beat.models import IntervalSchedule
from celeriac_django.beat.models import PeriodicTask
from celeriac_django.beat.models import SolarSchedule


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "task",
        "schedule",
        "enabled",
        "one_off",
        "last_run_at",
        "total_run_count",
    )
    list_filter = ("enabled", "one_off", "task", "queue")
    search_fields = ("name", "task", "description")
    readonly_fields = ("last_run_at", "total_run_count", "date_changed")
    actions = ("enable", "disable", "run_now")
    fieldsets = (
        (None, {"fields": ("name", "task", "enabled", "description")}),
        ("Schedule", {"fields": ("interval", "crontab", "solar", "clocked", "one_off", "missed")}),
        ("Arguments", {"fields": ("args", "kwargs")}),
        ("Sending", {"fields": ("queue", "priority", "expire_seconds")}),
        ("Runs", {"fields": ("last_run_at", "total_run_count", "date_changed")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("interval", "crontab", "solar", "clocked")

    def schedule(self, task: PeriodicTask) -> str:
        return str(task.schedule or "none")

    def enable(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        changed = queryset.update(enabled=True)
        self.message_user(request, f"{changed} entries enabled.", messages.SUCCESS)

    def disable(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        changed = queryset.update(enabled=False)
        self.message_user(request, f"{changed} entries disabled.", messages.SUCCESS)

    def run_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Send each selected entry's task once, now, as beat would (its schedule is untouched)."""
        from celeriac_django import get_app

        app = get_app()
        sent = []
        for entry in queryset:
            handle = app.send_task(
                entry.task,
                entry.args,
                entry.kwargs,
                queue=entry.queue or None,
                priority=entry.priority,
                expires=None if entry.expire_seconds is None else float(entry.expire_seconds),
                headers={"beat_entry": entry.name},
            )
            sent.append(f"{entry.name} ({handle.id})")
        self.message_user(request, f"Sent now: {', '.join(sent)}.", messages.SUCCESS)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "every", "period")


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")


@admin.register(SolarSchedule)
class SolarScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "event", "latitude", "longitude")


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "clocked_time")


@admin.register(BeatRun)
class BeatRunAdmin(admin.ModelAdmin):
    """Beat's cursor per entry: shown for diagnosis, written by beat alone."""

    list_display = ("entry", "last_run_at", "claimed_at")
    search_fields = ("entry",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
