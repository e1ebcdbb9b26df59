"""Entries edited in the Django admin reach a running ``manage.py celeriac beat``: added
through the admin's form, refused when invalid, disabled with the admin's action; on SQLite
and on PostgreSQL (this app's models routed to the test's own database)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from beat_support import KINDS
from beat_support import TASK
from beat_support import beat_and_worker
from beat_support import hits
from beat_support import logs
from beat_support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN = "/admin/celeriac_django_beat"
PICKUP = 2.5  # as in test_beat_schedule.py


class BeatRouter:
    """This app's models in the database under test; everything else where it was."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "celeriac_django_beat" else None

    db_for_write = db_for_read


def admin_settings(**more: Any) -> Any:
    """Settings the admin's pages need, over the tests' own (which have no admin URLs)."""
    from django.test import override_settings

    return override_settings(
        ROOT_URLCONF="beat_admin_urls",
        ALLOWED_HOSTS=["testserver"],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        **more,
    )


@pytest.fixture(params=KINDS)
def admin_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Path, Any]]:
    """A logged-in superuser's test client, and a running beat and worker on the database
    the admin writes this app's models to; yields ``(client, folder, group)``."""
    from django.contrib.auth.models import User
    from django.test import Client

    with beat_and_worker(request.param, tmp_path) as (alias, group):
        settings = admin_settings(DATABASE_ROUTERS=[BeatRouter(alias)])
        with settings:
            user = User.objects.create_superuser(
                f"admin-{secrets.token_hex(4)}", password=secrets.token_hex(8)
            )
            client = Client()
            client.force_login(user)
            try:
                yield client, tmp_path, group
            finally:
                user.delete()


def _errorlists(response: Any) -> list[str]:
    """The error lists of an admin page, for assertion messages."""
    return re.findall(r'<ul class="errorlist[^>]*>.*?</ul>', response.content.decode(), re.DOTALL)


def _entry_form(**fields: Any) -> dict[str, Any]:
    form = {"name": "", "task": TASK, "args": "[]", "kwargs": "{}", "enabled": "on", "missed": ""}
    form.update({"queue": "", "priority": "", "expire_seconds": "", "description": ""})
    form.update(fields)
    return form


def test_entries_edited_in_the_admin(admin_client: tuple[Any, Path, Any]) -> None:
    from celeriac_django.beat.models import CrontabSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    client, folder, group = admin_client
    response = client.post(f"{ADMIN}/intervalschedule/add/", {"every": "1", "period": "seconds"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    interval = IntervalSchedule.objects.get()

    # Invalid: two schedules. The form says why, and nothing is saved.
    response = client.post(
        f"{ADMIN}/crontabschedule/add/",
        {
            "minute": "0",
            "hour": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "day_of_week": "*",
            "timezone": "UTC",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    crontab_id = str(CrontabSchedule.objects.get(minute="0").pk)
    form = _entry_form(name="two", args='["two"]', interval=str(interval.pk), crontab=crontab_id)
    response = client.post(f"{ADMIN}/periodictask/add/", form)
    assert response.status_code == 200
    assert "Set only one schedule" in response.content.decode(), _errorlists(response)
    assert not PeriodicTask.objects.filter(name="two").exists()
    # Invalid: a crontab minute out of range, named.
    response = client.post(f"{ADMIN}/crontabschedule/add/", {"minute": "61", "timezone": "UTC"})
    assert response.status_code == 200
    assert "Not a valid crontab field" in response.content.decode(), _errorlists(response)

    # Added through the admin: beat runs it.
    added = time.time()
    response = client.post(
        f"{ADMIN}/periodictask/add/",
        _entry_form(name="from admin", args='["admin"]', interval=str(interval.pk)),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    first = wait_for(
        lambda: [h for h in hits(folder, "admin") if h["at"] > added],
        10,
        "the admin's entry ran",
        lambda: logs(group),
    )
    assert first[0]["at"] - added < PICKUP, f"picked up after {first[0]['at'] - added:.2f} s"

    # Disabled with the admin's action: beat drops it.
    entry = PeriodicTask.objects.get(name="from admin")
    response = client.post(
        f"{ADMIN}/periodictask/", {"action": "disable", "_selected_action": [str(entry.pk)]}
    )
    assert response.status_code == 302
    disabled = time.time()
    wait_for(
        lambda: "removed: from admin" in group.started[1].output(),
        10,
        "beat dropped the entry",
        lambda: logs(group),
    )
    assert time.time() - disabled < PICKUP
    assert PeriodicTask.objects.get(name="from admin").enabled is False
    print(f"admin: added to run {first[0]['at'] - added:.2f} s")


def test_run_now_sends_the_entrys_task_at_once() -> None:
    """The admin's "run now" action sends the selected entries' tasks through the project's
    app; a worker runs them (here in this process, on the tests' default database)."""
    from django.contrib.auth.models import User
    from django.test import Client
    from djtestapp.models import Shipped

    from celeriac.testing import join
    from celeriac.testing import worker_thread
    from celeriac_django import get_app
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    name = f"order-{secrets.token_hex(4)}"
    daily = IntervalSchedule.objects.create(every=1, period="days")
    entry = PeriodicTask.objects.create(name=name, task="djtestapp.tasks.ship", args=[name], interval=daily)
    user = User.objects.create_superuser(f"admin-{secrets.token_hex(4)}", password=secrets.token_hex(8))
    app = get_app()
    try:
        with admin_settings(), worker_thread(app, pool="threads", concurrency=1) as worker:
            client = Client()
            client.force_login(user)
            data = {"action": "run_now", "_selected_action": [str(entry.pk)]}
            response = client.post(f"{ADMIN}/periodictask/", data, follow=True)
            assert response.status_code == 200
            assert f"Sent now: {name} (" in response.content.decode()
            join(worker)
        assert Shipped.objects.filter(order_name=name).count() == 1
        entry.refresh_from_db()
        assert entry.total_run_count == 0  # beat's count: a manual run is not a scheduled one
    finally:
        user.delete()
        entry.delete()
        daily.delete()
