"""The tables of celeriac_django: the transactional outbox and the task results of ``django://``."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """A task call written in the same transaction as the data it belongs to.

    It exists if and only if that transaction committed; the relay publishes it and sets
    ``sent_at``. ``claimed_by``/``claimed_at`` keep two relays from publishing one row at once; a
    claim older than the relay's lease (its relay died mid-publish) may be taken over.
    """

    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255, db_index=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    #: apply_async's options, times made absolute when written (``countdown`` as ``eta``).
    options = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "celeriac_outbox"
        ordering = ("id",)
        verbose_name = "outbox message"

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}"


class TaskResult(models.Model):
    """A task's state and result, as the ``django://`` result store keeps them.

    ``payload`` is what the worker stored (the result meta, encoded by the result serializer);
    ``result``, ``traceback`` and ``date_done`` are copied out of it when it is JSON, for the admin
    to show and search.
    """

    task_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=50, db_index=True)
    task_name = models.CharField(max_length=255, blank=True, default="", db_index=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    content_type = models.CharField(max_length=128)
    content_encoding = models.CharField(max_length=64)
    payload = models.BinaryField()
    result = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)
    date_done = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        db_table = "celeriac_taskresult"
        ordering = ("-date_done",)
        verbose_name = "task result"

    def __str__(self) -> str:
        return f"{self.task_id} {self.status}"
