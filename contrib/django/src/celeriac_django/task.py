"""The class of a Django project's tasks: Celery 5.4's ``delay_on_commit`` and ``apply_async_on_commit``."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from celeriac import AsyncResult
from celeriac import Task


class DjangoTask(Task[Any, Any]):
    """A task that can be sent when the current database transaction commits.

    Outside a transaction (autocommit) the task is sent at once; when the transaction rolls back
    it is never sent. The task id is not known until then, so these return None, as Celery's do.
    A web process that dies between the commit and the send loses the task: for a send that
    cannot be lost, write it into the outbox instead: ``delay_in_transaction``.
    """

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay(*args, **kwargs)`` once the transaction of the default database commits."""
        transaction.on_commit(functools.partial(self.delay, *args, **kwargs))

    def apply_async_on_commit(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        using: str | None = None,
        **options: Any,
    ) -> None:
        """``apply_async(args, kwargs, **options)`` once the transaction of ``using`` commits."""
        transaction.on_commit(functools.partial(self.apply_async, args, kwargs, **options), using=using)

    def delay_in_transaction(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Write this call into the outbox in the current transaction of the default database:
        sent if and only if the transaction commits, even if this process dies right after."""
        from celeriac_django.outbox import send_in_transaction

        return send_in_transaction(self, args, kwargs)

    def apply_async_in_transaction(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        """:func:`celeriac_django.outbox.send_in_transaction` for this task (``using=`` a database)."""
        from celeriac_django.outbox import send_in_transaction

        return send_in_transaction(self, args, kwargs, **options)
