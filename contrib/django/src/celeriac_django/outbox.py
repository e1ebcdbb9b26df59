"""The transactional outbox: a task is sent if and only if the transaction that asked for it committed.

:func:`send_in_transaction` writes the call into ``celeriac_outbox`` through the same database
connection, so inside ``transaction.atomic()`` the row commits or rolls back with the user's data.
After the commit the same process tries to publish it at once; whatever it could not publish (the
broker was down, the process died right after the commit) the relay publishes: a worker bootstep
(``[django] outbox_relay``) or ``manage.py celeriac relay``.

Publishing takes three steps, each its own short transaction: *claim* unsent rows (an UPDATE that
matches only rows nobody claimed, or whose claim is older than the lease), *publish* them,
*mark* them sent. Two relays never publish a row at once. A relay that dies between publishing
and marking leaves a claim that expires after the lease, and the row is published again: the
message is delivered at least once, and exactly once unless a relay dies inside that window.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import attrs
from django.db import transaction
from django.utils import timezone

from celeriac import AsyncResult
from celeriac import Celeriac
from celeriac import Task
from celeriac_django.models import OutboxMessage

log = logging.getLogger("celeriac.django.outbox")

#: apply_async's options an outbox row keeps (``countdown`` is written as ``eta``).
OPTIONS = frozenset(
    {
        "eta",
        "expires",
        "queue",
        "priority",
        "headers",
        "serializer",
        "ignore_result",
        "exchange",
        "routing_key",
    }
)


def send_in_transaction(
    task: Task[Any, Any] | str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    using: str | None = None,
    app: Celeriac | None = None,
    countdown: float | None = None,
    task_id: str | None = None,
    **options: Any,
) -> AsyncResult:
    """Write the call into the outbox of database ``using``, in its current transaction.

    ``task`` is a task or a task's name; the options are ``apply_async``'s. Arguments must be
    JSON (the outbox column is JSON). Returns the result handle of the task id chosen now.
    """
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"send_in_transaction: unknown option(s) {', '.join(sorted(unknown))}")
    if app is None:
        from celeriac_django._app import get_app

        app = task.app if isinstance(task, Task) else get_app()
    name = task.name if isinstance(task, Task) else task
    eta = options.get("eta")
    if countdown is not None:
        eta = timezone.now() + dt.timedelta(seconds=countdown)
    expires = options.get("expires")
    if isinstance(expires, int | float):
        expires = timezone.now() + dt.timedelta(seconds=expires)
    stored = {**options, "eta": _iso(eta), "expires": _iso(expires)}
    row = OutboxMessage.objects.using(using).create(
        task_id=task_id or str(uuid.uuid4()),
        task_name=name,
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        options={key: value for key, value in stored.items() if value is not None},
    )
    relay = Relay(app, using=using)
    transaction.on_commit(lambda: relay.publish_now([row.pk]), using=using)
    return AsyncResult(row.task_id, app)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"send_in_transaction: eta and expires must be datetimes or seconds, got {value!r}")


@attrs.frozen
class Published:
    """What one relay pass did: rows published, and rows whose publish failed (kept for later)."""

    sent: int
    failed: int


class Relay:
    """Publishes outbox rows of one database and marks them sent."""

    def __init__(
        self, app: Celeriac, *, using: str | None = None, lease: float = 60.0, batch: int = 100
    ) -> None:
        self.app = app
        self.using = using
        self.lease = lease
        self.batch = batch
        self.token = f"{socket.gethostname()[:40]}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    def publish_now(self, ids: Sequence[int]) -> None:
        """Right after the commit, in the process that wrote the rows: publish them if it can.

        A failure is logged and left to the relay, never raised into the committed request."""
        try:
            self.publish(self._claim(OutboxMessage.objects.using(self.using).filter(pk__in=ids)))
        except Exception:
            log.warning("outbox rows %s stay for the relay", list(ids), exc_info=True)

    def run_once(self) -> Published:
        """Claim up to ``batch`` unsent rows, oldest first, and publish them."""
        return self.publish(self._claim(OutboxMessage.objects.using(self.using).all()))

    def _claim(self, rows: Any) -> list[OutboxMessage]:
        now = timezone.now()
        stale = now - dt.timedelta(seconds=self.lease)
        manager = OutboxMessage.objects.using(self.using)
        candidates = list(
            rows.filter(sent_at__isnull=True)
            .exclude(claimed_at__gt=stale)
            .order_by("id")
            .values_list("id", flat=True)[: self.batch]
        )
        if not candidates:
            return []
        # One UPDATE whose WHERE is checked again on each row it locks: of two relays claiming
        # the same rows, the second matches none of those the first took.
        unclaimed = manager.filter(pk__in=candidates, sent_at__isnull=True).exclude(claimed_at__gt=stale)
        claimed = unclaimed.update(claimed_by=self.token, claimed_at=now)
        if not claimed:
            return []
        return list(manager.filter(pk__in=candidates, claimed_by=self.token, claimed_at=now).order_by("id"))

    def publish(self, rows: Sequence[OutboxMessage]) -> Published:
        manager = OutboxMessage.objects.using(self.using)
        sent: list[int] = []
        failed = 0
        for row in rows:
            try:
                self._send(row)
            except Exception as exc:
                failed += 1
                log.warning("outbox: publishing %s (%s) failed: %s", row.task_id, row.task_name, exc)
                manager.filter(pk=row.pk, claimed_by=self.token).update(
                    claimed_at=None, claimed_by="", attempts=row.attempts + 1, last_error=str(exc)[:2000]
                )
                continue
            sent.append(row.pk)
        if sent:
            manager.filter(pk__in=sent, claimed_by=self.token).update(sent_at=timezone.now(), last_error="")
        return Published(sent=len(sent), failed=failed)

    def _send(self, row: OutboxMessage) -> None:
        options = dict(row.options)
        for key in ("eta", "expires"):
            if key in options:
                options[key] = dt.datetime.fromisoformat(options[key])
        self.app.send_task(row.task_name, row.args, row.kwargs, task_id=row.task_id, **options)


def relay_forever(relay: Relay, stop: threading.Event, interval: float) -> None:
    """Run the relay until ``stop`` is set: at once while rows remain, else every ``interval`` s."""
    from django.db import close_old_connections

    while not stop.is_set():
        try:
            done = relay.run_once()
        except Exception:
            log.warning("outbox relay pass failed; trying again in %.1f s", interval, exc_info=True)
            done = Published(sent=0, failed=1)
        finally:
            close_old_connections()
        if done.sent == 0 or done.failed:
            stop.wait(interval)
