"""The outbox in one process: rows only for committed transactions, claims that keep two relays
apart, a failed publish kept for later. (The example's tests kill a real web process between
commit and publish and run the relay and a worker as processes.)"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import transaction
from django.utils import timezone
from djtestapp.models import Order
from djtestapp.models import Shipped
from djtestapp.tasks import ship

from celeriac import Celeriac
from celeriac.testing import join
from celeriac.testing import worker_thread
from celeriac_django import get_app
from celeriac_django.models import OutboxMessage
from celeriac_django.outbox import Relay
from celeriac_django.outbox import send_in_transaction


@pytest.fixture(autouse=True)
def _empty() -> None:
    OutboxMessage.objects.all().delete()
    Shipped.objects.all().delete()
    Order.objects.all().delete()


def test_committed_is_sent_rolled_back_is_not() -> None:
    app = get_app()
    with worker_thread(app, pool="threads", concurrency=1) as worker:
        with transaction.atomic():
            Order.objects.create(name="kept")
            kept = ship.delay_in_transaction("kept")
        with transaction.atomic():
            Order.objects.create(name="dropped")
            dropped = send_in_transaction("djtestapp.tasks.ship", ["dropped"])
            transaction.set_rollback(True)
        join(worker)
        assert kept.get(timeout=10) == "shipped kept"
    assert list(Shipped.objects.values_list("order_name", flat=True)) == ["kept"]
    assert not OutboxMessage.objects.filter(task_id=dropped.id).exists()
    row = OutboxMessage.objects.get(task_id=kept.id)
    assert row.sent_at is not None and row.task_name == "djtestapp.tasks.ship" and row.args == ["kept"]


def test_publish_failure_stays_for_the_relay() -> None:
    # A broker that refuses connections: the send after the commit fails, and is kept.
    down = Celeriac(
        "down",
        broker="redis://127.0.0.1:1/0",
        config=False,
        env={},
        set_as_current=False,
        redis={"retry_attempts": 0},
    )
    with transaction.atomic():
        result = send_in_transaction(ship.resolve(), ["later"], app=down)
    row = OutboxMessage.objects.get(task_id=result.id)
    assert row.sent_at is None and row.attempts == 1 and row.last_error
    assert row.claimed_at is None  # released: any relay may take it
    app = get_app()
    assert Relay(app).run_once().sent == 1
    with worker_thread(app, pool="threads", concurrency=1) as worker:
        join(worker)
    assert list(Shipped.objects.values_list("order_name", flat=True)) == ["later"]
    assert OutboxMessage.objects.get(task_id=result.id).sent_at is not None


def test_a_claimed_row_is_not_published_twice_until_its_lease_ends() -> None:
    OutboxMessage.objects.create(task_id="t-1", task_name="djtestapp.tasks.ship", args=["x"])
    app = get_app()
    first = Relay(app, lease=0.5)
    claimed = first._claim(OutboxMessage.objects.all())
    assert [row.task_id for row in claimed] == ["t-1"]
    second = Relay(app, lease=0.5)
    assert second.run_once().sent == 0  # claimed by the first, which may be publishing it now
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not second._claim(OutboxMessage.objects.all()):
        time.sleep(0.05)  # the first relay "died": after its lease the row is taken over
    assert OutboxMessage.objects.get(task_id="t-1").claimed_by == second.token


def test_options_are_kept_and_times_made_absolute() -> None:
    before = timezone.now()
    with transaction.atomic():
        result = ship.apply_async_in_transaction(("x",), countdown=60, queue="slow", priority=3)
    row = OutboxMessage.objects.get(task_id=result.id)
    assert row.options["queue"] == "slow" and row.options["priority"] == 3
    eta = dt.datetime.fromisoformat(row.options["eta"])
    assert before + dt.timedelta(seconds=59) < eta < timezone.now() + dt.timedelta(seconds=61)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match=r"unknown option.*bogus"):
        send_in_transaction("djtestapp.tasks.ship", ["x"], bogus=1)


def test_without_publish_on_commit_only_the_relay_sends() -> None:
    quiet = Celeriac(
        "quiet",
        broker="memory://",
        config=False,
        env={},
        set_as_current=False,
        django={"outbox_publish_on_commit": False},
    )
    with transaction.atomic():
        result = send_in_transaction("djtestapp.tasks.ship", ["by relay"], app=quiet)
    assert OutboxMessage.objects.get(task_id=result.id).sent_at is None
    assert Relay(quiet).run_once().sent == 1
    assert OutboxMessage.objects.get(task_id=result.id).sent_at is not None


def relay_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "outbox-relay"]


def test_the_relay_runs_in_the_projects_worker_only() -> None:
    """Another app's worker in a process where Django is set up runs no relay: the outbox holds
    the project's tasks (and a relay thread beside, say, a prefork worker's fork would be
    inherited mid-query)."""
    with worker_thread(get_app(), pool="threads", concurrency=1):
        assert relay_threads() == ["outbox-relay"]
    assert relay_threads() == []
    other = Celeriac("other", broker="memory://", config=False, env={}, set_as_current=False)
    try:
        with worker_thread(other, pool="threads", concurrency=1):
            assert relay_threads() == []
    finally:
        other.close()
