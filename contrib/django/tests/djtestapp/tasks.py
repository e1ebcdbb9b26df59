"""Found by autodiscovery: no module imports this one. Declared without the project's app."""

from __future__ import annotations

from celeriac import shared_task
from djtestapp.models import Shipped


@shared_task
def double(x: int) -> int:
    return 2 * x


@shared_task
def ship(name: str) -> str:
    Shipped.objects.create(order_name=name)
    return f"shipped {name}"


@shared_task
def fail(message: str) -> None:
    raise ValueError(message)


@shared_task
def fresh_connection() -> bool:
    """Did this task start without a connection left open by the task before it?"""
    from django.db import connection

    started_fresh = connection.connection is None
    Shipped.objects.count()  # leaves this thread's connection open
    return started_fresh
