"""Found by autodiscovery: no module imports this one."""

from __future__ import annotations

from celeriac_django import get_app
from djtestapp.models import Shipped

app = get_app()


@app.task
def double(x: int) -> int:
    return 2 * x


@app.task
def ship(name: str) -> str:
    Shipped.objects.create(order_name=name)
    return f"shipped {name}"


@app.task
def fail(message: str) -> None:
    raise ValueError(message)
