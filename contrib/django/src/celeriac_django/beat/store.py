"""``django://``: beat's schedule store in the project's database, through the ORM.

It keeps last-run times and the leader lease (so several beat instances may share one
database, one sending), and serves the enabled :class:`~celeriac_django.beat.models.PeriodicTask`
rows as beat's stored entries. Beat reads :meth:`DjangoScheduleStore.entries_version` each
second and re-reads the entries when it moved, so an edit in the admin reaches a running
beat within a second or two.

Lease expiry is judged on each beat host's clock, as for the SQLite store: hosts sharing a
database keep their clocks in step (NTP does, far within the lease).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping
from typing import Any
from typing import final
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError


def database_alias(url: str) -> str:
    """``django://`` is the ``default`` database, ``django://NAME`` the database ``NAME``."""
    parts = urlsplit(url)
    if parts.scheme != "django" or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"schedule store {url!r}: expected django:// or django://DATABASE_ALIAS")
    return parts.netloc or "default"


def ensure_django() -> None:
    """Set Django up if the process has not (``celeriac beat`` with ``DJANGO_SETTINGS_MODULE``).

    :raises ConfigError: Django cannot be set up, or ``celeriac_django.beat`` is not installed.
    """
    from django.apps import apps

    if not apps.ready:
        if not os.environ.get("DJANGO_SETTINGS_MODULE"):
            raise ConfigError(
                "the django:// schedule store needs a Django project: run `python manage.py celeriac beat`, "
                "or set DJANGO_SETTINGS_MODULE"
            )
        import django

        django.setup()
    if not apps.is_installed("celeriac_django.beat"):
        raise ConfigError(
            'the django:// schedule store needs "celeriac_django.beat" in INSTALLED_APPS '
            "(then run manage.py migrate)"
        )


def _refresh(connection: Any) -> None:
    """Drop the connection if it broke (the next query opens a new one), as Django does
    between two requests; called each second, from :meth:`DjangoScheduleStore.entries_version`.

    ``CONN_MAX_AGE`` is honoured when set above 0; its default, 0 (a connection per request),
    would reconnect every second in a process that has no requests, so beat then keeps its
    connection while it works.
    """
    if connection.connection is None:
        return
    if connection.settings_dict.get("CONN_MAX_AGE") != 0:
        connection.close_if_unusable_or_obsolete()
    elif connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def _put_run(alias: str, entry: str, **fields: float) -> None:
    """Set ``fields`` of the entry's :class:`BeatRun` row, creating it if missing.

    An UPDATE, then an INSERT if it matched nothing, rather than ``update_or_create``'s read
    first: in a SQLite transaction that has read, a write finding the file locked by another
    connection fails at once ("database is locked") instead of waiting out the database's
    timeout. Callers start their transaction with a write for the same reason.
    """
    from celeriac_django.beat.models import BeatRun

    runs = BeatRun.objects.using(alias)
    if not runs.filter(entry=entry).update(**fields):
        runs.create(entry=entry, **fields)


@final
class DjangoScheduleStore:
    """Last runs, the leader lease and the entries in the database ``alias``.

    Also a :class:`~celeriac.plugin.BeatLock` and an :class:`~celeriac.plugin.EntryStore`.
    Methods run in beat's thread, each a statement or a short transaction in autocommit.
    """

    def __init__(self, url: str, config: Config) -> None:
        self.alias = database_alias(url)
        ensure_django()
        from django.db import connections

        if self.alias not in connections.settings:
            raise ConfigError(f"schedule store {url!r}: settings.DATABASES has no {self.alias!r}")

    # --- last runs ------------------------------------------------------------------------

    def last_run_at(self, entry: str) -> float | None:
        from celeriac_django.beat.models import BeatRun

        found = (
            BeatRun.objects.using(self.alias)
            .filter(entry=entry)
            .values_list("last_run_at", flat=True)
            .first()
        )
        return None if found is None else float(found)

    def set_last_run_at(self, entry: str, when: float) -> None:
        from django.conf import settings
        from django.db import transaction
        from django.db.models import F
        from django.db.models import Q
        from django.utils import timezone

        from celeriac_django.beat.models import PeriodicTask
        from celeriac_django.beat.models import ScheduleVersion

        rows = PeriodicTask.objects.using(self.alias).filter(name=entry)
        at = dt.datetime.fromtimestamp(when, dt.UTC)
        if not settings.USE_TZ:  # the project keeps naive times in TIME_ZONE
            at = timezone.make_naive(at)
        with transaction.atomic(using=self.alias):
            # Writes first (see _put_run): the entry's row, then beat's own.
            rows.update_quietly(last_run_at=at, total_run_count=F("total_run_count") + 1)
            _put_run(self.alias, entry, last_run_at=when)
            # A one-off entry is done after this run: disabled, and beat told so.
            done = rows.filter(Q(one_off=True) | Q(clocked__isnull=False), enabled=True)
            if done.update_quietly(enabled=False):
                ScheduleVersion.bump(self.alias)

    # --- the leader lock --------------------------------------------------------------------

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        from django.db import IntegrityError
        from django.db import transaction
        from django.db.models import Q

        from celeriac_django.beat.models import BeatLease

        now = time.time()
        leases = BeatLease.objects.using(self.alias).filter(name=name)
        # One conditional UPDATE: under concurrent takers the database re-checks the condition
        # on the row as the first of them left it, so one wins.
        if leases.filter(Q(owner=owner) | Q(expires_at__lte=now)).update(owner=owner, expires_at=now + ttl):
            return True
        if leases.exists():
            return False
        try:
            with transaction.atomic(using=self.alias):
                BeatLease.objects.using(self.alias).create(name=name, owner=owner, expires_at=now + ttl)
        except IntegrityError:  # another instance created it first
            return False
        return True

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        from celeriac_django.beat.models import BeatLease

        now = time.time()
        renewed = (
            BeatLease.objects.using(self.alias)
            .filter(name=name, owner=owner, expires_at__gt=now)
            .update(expires_at=now + ttl)
        )
        return bool(renewed)

    def release(self, name: str, owner: str) -> None:
        from celeriac_django.beat.models import BeatLease

        BeatLease.objects.using(self.alias).filter(name=name, owner=owner).delete()

    def claim(self, name: str, owner: str, entry: str, when: float) -> bool:
        from django.db import transaction
        from django.db.models import F

        from celeriac_django.beat.models import BeatLease

        with transaction.atomic(using=self.alias):
            # An UPDATE that changes nothing, to check the lease and lock its row until the
            # claim is written (a taker waits for it); a write, not a read, first: see _put_run.
            held = (
                BeatLease.objects.using(self.alias)
                .filter(name=name, owner=owner, expires_at__gt=time.time())
                .update(expires_at=F("expires_at"))
            )
            if not held:
                return False
            _put_run(self.alias, entry, claimed_at=when)
        return True

    def claimed_at(self, entry: str) -> float | None:
        from celeriac_django.beat.models import BeatRun

        found = (
            BeatRun.objects.using(self.alias).filter(entry=entry).values_list("claimed_at", flat=True).first()
        )
        return None if found is None else float(found)

    # --- the entries ------------------------------------------------------------------------

    def stored_entries(self) -> dict[str, dict[str, Any]]:
        from celeriac_django.beat.models import PeriodicTask

        rows = (
            PeriodicTask.objects.using(self.alias)
            .filter(enabled=True)
            .select_related("interval", "crontab", "solar", "clocked")
        )
        return {row.name: row.table() for row in rows}

    def put_entry(self, name: str, table: Mapping[str, Any]) -> None:
        from celeriac_django.beat._tables import save_entry

        save_entry(self.alias, name, table)

    def delete_entry(self, name: str) -> bool:
        from celeriac_django.beat.models import PeriodicTask

        deleted, _ = PeriodicTask.objects.using(self.alias).filter(name=name).delete()
        return bool(deleted)

    def entries_version(self) -> int:
        from django.db import connections

        from celeriac_django.beat.models import ScheduleVersion

        _refresh(connections[self.alias])
        return ScheduleVersion.current(self.alias)

    def close(self) -> None:
        from django.db import connections

        connections[self.alias].close()
