"""The shop's tasks, found by celeriac_django when Django starts: nothing imports this module.

Declared with ``@shared_task``: an app of the project never imports the celeriac app.
"""

import os

from celeriac import shared_task
from orders.models import Fulfilment
from orders.models import Order


@shared_task
def fulfil(order_id: int) -> dict[str, int]:
    order = Order.objects.get(pk=order_id)
    Fulfilment.objects.create(order=order, worker_pid=os.getpid())
    Order.objects.filter(pk=order_id).update(fulfilled=True)
    return {"order": order_id, "worker_pid": os.getpid()}


@shared_task
def count_orders() -> int:
    return Order.objects.count()
