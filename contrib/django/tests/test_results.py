"""The django:// result store: through a worker, SUCCESS kept, failures with their traceback,
the admin's list searchable; on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from djtestapp.tasks import double
from djtestapp.tasks import fail

from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import ConfigError
from celeriac.plugin import ResultRecord
from celeriac.testing import worker_thread
from celeriac_django.models import TaskResult
from celeriac_django.results import django_result_store
from celeriac_django.task import DjangoTask


@pytest.fixture(params=["default", "pg"])
def alias(request: pytest.FixtureRequest) -> str:
    if request.param == "pg":
        return str(request.getfixturevalue("pg_alias"))
    return "default"


def make_app(alias: str) -> Celeriac:
    suffix = "" if alias == "default" else alias
    return Celeriac(
        "results",
        broker="memory://",
        result_store=f"django://{suffix}",
        config=False,
        env={},
        task_cls=DjangoTask,
        set_as_current=False,
    )


def test_results_through_a_worker(alias: str) -> None:
    app = make_app(alias)
    with worker_thread(app, pool="threads", concurrency=2):
        ok = app.send_task(double.name, [21])
        bad = app.send_task(fail.name, ["no luck"])
        assert ok.get(timeout=10) == 42
        with pytest.raises(ValueError, match="no luck"):
            bad.get(timeout=10)
    row = TaskResult.objects.using(alias).get(task_id=ok.id)
    assert (row.status, row.task_name, row.result) == ("SUCCESS", "djtestapp.tasks.double", "42")
    assert row.worker
    failed = TaskResult.objects.using(alias).get(task_id=bad.id)
    assert failed.status == "FAILURE" and "ValueError: no luck" in failed.traceback


def test_success_is_never_replaced(alias: str) -> None:
    store = django_result_store(f"django://{'' if alias == 'default' else alias}", make_app(alias).config)
    done = ResultRecord(
        task_id="r-1",
        state=states.SUCCESS,
        payload=b'{"status": "SUCCESS", "result": 1}',
        content_type="application/json",
    )
    later = ResultRecord(
        task_id="r-1", state=states.STARTED, payload=b'{"status": "STARTED"}', content_type="application/json"
    )
    store.forget("r-1")
    store.store(done)
    store.store(later)
    assert store.get("r-1") == done
    assert store.get_many(["r-0", "r-1"]) == [None, done]
    assert store.wait("r-1", frozenset({states.SUCCESS}), timeout=1) == done
    store.forget("r-1")
    assert store.get("r-1") is None
    assert store.wait("r-1", frozenset({states.SUCCESS}), timeout=0.05) is None


def test_unknown_database_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no database 'nowhere'"):
        django_result_store("django://nowhere", make_app("default").config)


def test_admin_finds_results_by_name_and_status() -> None:
    app = make_app("default")
    with worker_thread(app, pool="threads", concurrency=1):
        found = app.send_task(double.name, [5])
        found.get(timeout=10)
    User.objects.filter(username="admin").delete()
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    page = client.get("/admin/celeriac_django/taskresult/", {"q": "djtestapp.tasks.double"})
    assert page.status_code == 200 and found.id in page.content.decode()
    assert (
        found.id
        not in client.get("/admin/celeriac_django/taskresult/", {"q": "no-such-task"}).content.decode()
    )
    detail = client.get(
        f"/admin/celeriac_django/taskresult/{TaskResult.objects.get(task_id=found.id).pk}/change/"
    )
    assert detail.status_code == 200 and "10" in detail.content.decode()
    assert client.get("/admin/celeriac_django/outboxmessage/").status_code == 200
