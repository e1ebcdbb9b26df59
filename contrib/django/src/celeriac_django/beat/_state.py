"""What beat itself keeps in the database: the change marker, each entry's runs, the leader lease."""

from __future__ import annotations

from django.db import IntegrityError
from django.db import models
from django.db import transaction
from django.utils import timezone

#: The one row of :class:`ScheduleVersion`.
MARKER = 1


class ScheduleVersion(models.Model):
    """A counter moved by every change to the entries, read by beat once a second.

    Saves and deletes move it through signals, and the models' querysets move it on
    ``update()``, ``bulk_create()`` and ``bulk_update()``; SQL run outside the ORM must call
    :meth:`bump` (or beat keeps the entries it read last).
    """

    ident = models.PositiveSmallIntegerField(primary_key=True, default=MARKER)
    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "schedule version"

    def __str__(self) -> str:
        return f"version {self.version}, changed {self.changed_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def bump(cls, using: str = "default") -> None:
        """Tell every beat reading database ``using`` that the entries changed."""
        moved = (
            cls.objects.using(using)
            .filter(ident=MARKER)
            .update(version=models.F("version") + 1, changed_at=timezone.now())
        )
        if moved:
            return
        try:
            with transaction.atomic(using=using):
                cls.objects.using(using).create(ident=MARKER, version=1)
        except IntegrityError:  # created meanwhile by another process: move that one
            cls.bump(using)

    @classmethod
    def current(cls, using: str = "default") -> int:
        """The counter's value (0 before the first change)."""
        found = cls.objects.using(using).filter(ident=MARKER).values_list("version", flat=True).first()
        return int(found or 0)


class BeatRun(models.Model):
    """One entry's last run and last claimed run, as epoch seconds: beat's cursor.

    Keyed by entry name, so entries from code and the config file have one too. Floats, not
    datetimes: the next run and the run's task id are computed from the exact value.
    """

    entry = models.CharField(max_length=200, primary_key=True)
    last_run_at = models.FloatField(null=True, blank=True)
    claimed_at = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = "beat run"

    def __str__(self) -> str:
        return str(self.entry)


class BeatLease(models.Model):
    """The leader lock of the beat instances sharing this database: who sends, until when."""

    name = models.CharField(max_length=200, primary_key=True)
    owner = models.CharField(max_length=200)
    expires_at = models.FloatField()

    class Meta:
        verbose_name = "beat lease"

    def __str__(self) -> str:
        return f"{self.name}: {self.owner}"
