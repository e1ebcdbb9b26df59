"""The shop's tasks, found by celeriac_django when Django starts: nothing imports this module."""

import os

from celeriac_django import get_app
from orders.models import Fulfilment
from orders.models import Order

app = get_app()


@app.task
def fulfil(order_id: int) -> dict[str, int]:
    order = Order.objects.get(pk=order_id)
    Fulfilment.objects.create(order=order, worker_pid=os.getpid())
    Order.objects.filter(pk=order_id).update(fulfilled=True)
    return {"order": order_id, "worker_pid": os.getpid()}


@app.task
def count_orders() -> int:
    return Order.objects.count()
