"""``result_store = "django://"``: task results in the project's database, through the ORM.

``django://`` uses the ``default`` database, ``django://NAME`` the database ``NAME`` of
``settings.DATABASES``. The table is ``celeriac_taskresult`` (migrations of celeriac_django),
shown in the admin. The store needs Django set up: a worker started with ``manage.py celeriac``
has it; any other process gets ``django.setup()`` from ``DJANGO_SETTINGS_MODULE``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from celeriac.plugin import Config
from celeriac.plugin import ConfigError
from celeriac.plugin import ResultRecord

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac.plugin import TaskRequest

SUCCESS = "SUCCESS"
_CHUNK = 500


def django_result_store(url: str, config: Config) -> DjangoResultStore:
    """The store for ``django://[alias]``: Django is set up here if the process has not done it."""
    from celeriac_django._connections import django_ready

    if not django_ready():
        if not os.environ.get("DJANGO_SETTINGS_MODULE"):
            raise ConfigError(
                f"result_store {url!r} keeps results in a Django project's database: run the worker "
                "with `python manage.py celeriac worker`, or set DJANGO_SETTINGS_MODULE"
            )
        import django

        django.setup()
    alias = urlsplit(url).netloc or "default"
    from django.conf import settings

    if alias not in settings.DATABASES:
        raise ConfigError(f"result_store {url!r}: settings.DATABASES has no database {alias!r}")
    return DjangoResultStore(url, alias, poll_interval=0.5)


class DjangoResultStore:
    """Results in ``celeriac_taskresult`` of one Django database; each thread uses its own connection."""

    def __init__(self, url: str, alias: str, *, poll_interval: float) -> None:
        self.url = url
        self.alias = alias
        self.poll_interval = poll_interval

    def rows(self) -> Any:
        from celeriac_django.models import TaskResult

        return TaskResult.objects.using(self.alias)

    def store(self, record: ResultRecord) -> None:
        """Save the state, unless the task's SUCCESS is stored already."""
        from django.db import IntegrityError
        from django.db import transaction

        values = _columns(record)
        rows = self.rows()
        if rows.filter(task_id=record.task_id).exclude(status=SUCCESS).update(**values):
            return
        if rows.filter(task_id=record.task_id).exists():
            return  # a SUCCESS stays
        try:
            with transaction.atomic(using=self.alias):
                rows.create(task_id=record.task_id, **values)
        except IntegrityError:  # another writer inserted it first: update that one
            rows.filter(task_id=record.task_id).exclude(status=SUCCESS).update(**values)

    def get(self, task_id: str) -> ResultRecord | None:
        return self.get_many([task_id])[0]

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        found: dict[str, ResultRecord] = {}
        for start in range(0, len(task_ids), _CHUNK):
            chunk = task_ids[start : start + _CHUNK]
            for task_id, status, payload, content_type, encoding in (
                self.rows()
                .filter(task_id__in=chunk)
                .values_list("task_id", "status", "payload", "content_type", "content_encoding")
            ):
                found[task_id] = ResultRecord(
                    task_id=task_id,
                    state=status,
                    payload=bytes(payload),
                    content_type=content_type,
                    content_encoding=encoding,
                )
        return [found.get(task_id) for task_id in task_ids]

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Read until the task reaches one of ``states``: every 2 ms at first, doubling up to
        half a second; None when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            record = self.get(task_id)
            if record is not None and record.state in states:
                return record
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            time.sleep(delay if remaining is None else min(delay, remaining))
            delay = min(delay * 2, self.poll_interval)

    def forget(self, task_id: str) -> None:
        self.rows().filter(task_id=task_id).delete()

    def close(self) -> None:
        """Django owns the connections: each thread's is closed by Django, not here."""


def _columns(record: ResultRecord) -> dict[str, Any]:
    """The row's columns: the payload as stored, and what the admin shows read out of JSON meta."""
    values: dict[str, Any] = {
        "status": record.state,
        "payload": record.payload,
        "content_type": record.content_type,
        "content_encoding": record.content_encoding,
    }
    if record.content_type == "application/json":
        try:
            meta = json.loads(record.payload.decode(record.content_encoding or "utf-8"))
        except (ValueError, LookupError):
            meta = None
        if isinstance(meta, dict):
            result = meta.get("result")
            values["result"] = "" if result is None else json.dumps(result, default=str)[:100_000]
            values["traceback"] = meta.get("traceback") or ""
            values["task_name"] = str(meta.get("name") or "")[:255]
            values["worker"] = str(meta.get("worker") or meta.get("hostname") or "")[:255]
    return values


def name_result(app: Celeriac, task_name: str, request: TaskRequest) -> None:
    """Write the task's name and worker into its row (the stored meta carries neither)."""
    store = app.result_store
    if isinstance(store, DjangoResultStore) and not request.message.ignore_result:
        store.rows().filter(task_id=request.id, task_name="").update(
            task_name=task_name[:255], worker=request.hostname[:255]
        )
