"""``manage.py place_order NAME``: what the web view does, from the command line.

``--pause-after-commit`` stops right after the commit, before the task is published (it prints
``committed ORDER TASK_ID`` and waits): the moment a web process may die, which the example's
tests use to kill it. ``--roll-back`` writes the order and the task, then rolls back.
"""

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.base import CommandParser
from django.db import transaction

from orders.models import Order
from orders.tasks import fulfil


class Command(BaseCommand):
    help = "Place an order: the order and its fulfil task in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--pause-after-commit", action="store_true")
        parser.add_argument("--roll-back", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            if options["pause_after_commit"]:
                # Registered first, so it runs first after the commit: before the publish.
                transaction.on_commit(lambda: self._pause(order, result.id))
            order = Order.objects.create(name=options["name"])
            result = fulfil.delay_in_transaction(order.pk)
            order.task_id = result.id
            order.save(update_fields=["task_id"])
            if options["roll_back"]:
                transaction.set_rollback(True)
        self.stdout.write(f"{'rolled back' if options['roll_back'] else 'placed'} {order.pk} {result.id}")

    def _pause(self, order: Order, task_id: str) -> None:
        sys.stdout.write(f"committed {order.pk} {task_id}\n")
        sys.stdout.flush()
        time.sleep(3600)
