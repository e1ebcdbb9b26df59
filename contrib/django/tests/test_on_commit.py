"""delay_on_commit and apply_async_on_commit: sent when the transaction commits, never on rollback."""

from __future__ import annotations

from django.db import transaction
from djtestapp.models import Shipped
from djtestapp.tasks import ship

from celeriac.testing import join
from celeriac.testing import worker_thread
from celeriac_django import get_app
from celeriac_django.task import DjangoTask


def test_shared_tasks_of_installed_apps_are_found_and_are_django_tasks() -> None:
    # djtestapp.tasks is imported by nothing but autodiscovery (conftest sets Django up).
    registered = get_app().tasks["djtestapp.tasks.ship"]
    assert isinstance(registered, DjangoTask)
    assert ship.resolve() is registered


def test_sent_on_commit_not_on_rollback() -> None:
    Shipped.objects.all().delete()
    app = get_app()
    with worker_thread(app, pool="threads", concurrency=1) as worker:
        with transaction.atomic():
            ship.delay_on_commit("rolled-back")
            transaction.set_rollback(True)
        with transaction.atomic():
            ship.delay_on_commit("committed")
            ship.apply_async_on_commit(("committed-async",), queue=app.config.default_queue)
            # Nothing is sent before the commit: the worker, idle, has run nothing.
            join(worker)
            assert not Shipped.objects.exists()
        join(worker)
    assert sorted(Shipped.objects.values_list("order_name", flat=True)) == ["committed", "committed-async"]


def test_autocommit_sends_at_once() -> None:
    Shipped.objects.all().delete()
    app = get_app()
    with worker_thread(app, pool="threads", concurrency=1) as worker:
        ship.delay_on_commit("now")
        join(worker)
    assert list(Shipped.objects.values_list("order_name", flat=True)) == ["now"]
