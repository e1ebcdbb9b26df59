"""The admin pages: task results (searchable by id, name, status, result and traceback) and the outbox."""

from __future__ import annotations

from django.contrib import admin

from celeriac_django.models import OutboxMessage
from celeriac_django.models import TaskResult


@admin.register(TaskResult)
class TaskResultAdmin(admin.ModelAdmin):
    list_display = ("task_id", "task_name", "status", "date_done", "worker")
    list_filter = ("status", "date_done", "task_name")
    search_fields = ("task_id", "task_name", "status", "result", "traceback")
    date_hierarchy = "date_done"
    readonly_fields = (
        "task_id",
        "task_name",
        "status",
        "worker",
        "result",
        "traceback",
        "content_type",
        "content_encoding",
        "date_created",
        "date_done",
    )
    exclude = ("payload",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("task_id", "task_name", "created_at", "sent_at", "attempts")
    list_filter = ("sent_at", "task_name")
    search_fields = ("task_id", "task_name", "last_error")
    readonly_fields = (
        "task_id",
        "task_name",
        "created_at",
        "claimed_by",
        "claimed_at",
        "sent_at",
        "attempts",
    )
