"""The dashboard in a real browser, on live data from a real worker (SQLite and Redis).

One test per broker walks the pages an operator uses and clicks what they click: a task
finishing appears within a second without a reload, revoke revokes, pool grow grows the
worker's pool; every page is kept as a screenshot (tests/artifacts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import chain
from celeriac import signature

from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def client(cluster: Any) -> Iterator[Celeriac]:
    """The producer side, reading the project's configuration (tasks sent by name)."""
    app = Celeriac("client", config=str(cluster.directory / "celeriac.toml"), env={})
    yield app
    app.close()


def _live(page: Any) -> None:
    page.wait_for_selector("#live-status.on")


def test_pages_show_live_data_and_actions_work(
    cluster: Any, client: Celeriac, page: Any, shoot: Any, poll: Any
) -> None:

    kind = cluster.kind  # type: ignore[attr-defined]
    hostname = f"w1@{kind}"
    cluster.start_worker(hostname)
    cluster.start_dashboard()
    poll(lambda: cluster.get("/api/workers?status=true").get(hostname), 20, "worker online")

    # Workers page: the worker, online, from its events.
    page.goto(cluster.base + "/workers")
    _live(page)
    page.wait_for_selector(f'tr[data-worker="{hostname}"] >> text=online')

    # Tasks page: a task that finishes appears within 1 s, without a reload.
    page.goto(cluster.base + "/tasks")
    _live(page)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    result = client.send_task("proj.add", (2, 3))
    assert result.get(timeout=20) == 5
    finished = time.monotonic()
    page.wait_for_selector(f'tr[data-task="{result.id}"][data-state="SUCCESS"]', timeout=1000)
    seen_after = time.monotonic() - finished
    assert navigations == [], navigations
    assert seen_after < 1.0
    client.send_task("proj.fail").get(timeout=20, propagate=False)
    workflow = chain(signature("proj.add", (1, 1)), signature("proj.add", (10,))).apply_async(app=client)
    assert workflow.get(timeout=20) == 12
    page.wait_for_selector('tr[data-state="FAILURE"]')
    shoot(page, f"{kind}-tasks")

    # Search and filter are done by the server.
    page.fill('input[name="search"]', "(2, 3)")
    page.click('.filters button[type="submit"]')
    page.wait_for_selector(f'tr[data-task="{result.id}"]')
    assert page.locator("#tasks tbody tr").count() == 1

    # Task page: timeline and the workflow drawn as a graph.
    poll(lambda: _state(cluster, workflow.id) == "SUCCESS", 10, "the chain's last task")
    page.goto(f"{cluster.base}/task/{workflow.id}")
    page.wait_for_selector("#timeline >> text=task-succeeded")
    page.wait_for_selector("svg.workflow")
    assert page.locator("svg.workflow a").count() == 2
    shoot(page, f"{kind}-task")

    # Revoke, clicked: a task due in a few seconds is refused when it comes due, and shows
    # REVOKED live. The client's task-sent event makes it known before any worker sees it.
    waiting = client.send_task("proj.add", (7, 7), countdown=6)
    poll(lambda: _state(cluster, waiting.id) == "PENDING", 10, "the task-sent event")
    page.goto(f"{cluster.base}/task/{waiting.id}")
    _live(page)
    page.click("#revoke")
    page.wait_for_selector("#flash.ok")
    page.wait_for_selector("#task-state.REVOKED", timeout=20_000)
    assert client.AsyncResult(waiting.id).state == "REVOKED"
    shoot(page, f"{kind}-task-revoked")

    # Worker page: pool grow, clicked, grows the worker's pool.
    page.goto(f"{cluster.base}/worker/{hostname}")
    page.wait_for_selector("#pool-size b")
    before = int(page.inner_text("#pool-size b"))
    page.click("#pool-grow")
    page.wait_for_selector("#flash.ok")
    page.wait_for_function(
        f"document.querySelector('#pool-size b')?.textContent === '{before + 1}'", timeout=10_000
    )
    stats = cluster.get(f"/api/workers?workername={hostname}&refresh=1")[hostname]["stats"]
    assert stats["pool"]["max-concurrency"] == before + 1
    shoot(page, f"{kind}-worker")

    # Workers, queues and graphs render with what happened.
    page.goto(cluster.base + "/workers")
    page.wait_for_selector(f'tr[data-worker="{hostname}"]')
    shoot(page, f"{kind}-workers")
    page.goto(cluster.base + "/queues")
    page.wait_for_selector('tr[data-queue="celery"]')
    shoot(page, f"{kind}-queues")
    page.goto(cluster.base + "/graphs")
    page.wait_for_selector("body[data-graphs-loaded]")
    page.wait_for_selector("#chart-by_state .uplot")
    shoot(page, f"{kind}-graphs")
    if kind == "sqlite":
        _dead_letters_and_schedule(cluster, client, page, shoot, poll)


def _state(cluster: Any, task_id: str) -> str | None:
    try:
        state: str = cluster.get(f"/api/task/info/{task_id}")["state"]
    except OSError:  # 404 until its first event arrived
        return None
    return state


def _dead_letters_and_schedule(cluster: Any, client: Celeriac, page: Any, shoot: Any, poll: Any) -> None:
    # An unregistered task is dead-lettered by the worker; requeue, clicked, puts it back.
    client.send_task("proj.missing", (1,))
    page.goto(cluster.base + "/dead-letters")
    poll(lambda: page.reload() or page.locator("#dead-letters tr[data-letter]").count(), 20, "dead letter")
    assert "not registered" in page.inner_text("#dead-letters").lower() or page.locator("td.clip").count()
    shoot(page, "sqlite-dead-letters")
    before = len(client.transport.dead_letters(None, 100))
    page.click('#dead-letters button:has-text("Requeue")')
    page.wait_for_selector("#flash.ok")
    # The worker dead-letters it again (still unregistered): requeued, then back.
    poll(lambda: len(client.transport.dead_letters(None, 100)) == before, 20, "dead-lettered again")

    # Purge, clicked (and confirmed): the transport's dead letters are gone for good.
    page.reload()
    page.click("#purge")
    page.wait_for_selector("#flash.ok")
    assert f"Purged {before} dead letters" in page.inner_text("#flash")
    page.wait_for_selector("#dead-letters >> text=No dead letters.")
    assert client.transport.dead_letters(None, 100) == []

    # Schedule: an entry stored through the page, shown with its next run.
    page.goto(cluster.base + "/schedule")
    page.fill('input[name="name"]', "nightly-add")
    page.fill('textarea[name="table"]', '{"task": "proj.add", "every": "1h", "args": [1, 2]}')
    page.click("#schedule-save")
    page.wait_for_selector("#flash.ok")
    page.reload()
    page.wait_for_selector('tr[data-entry="nightly-add"]')
    shoot(page, "sqlite-schedule")


def test_behind_a_prefix_with_credentials_the_page_works(
    tmp_path: Any, browser: Any, shoot: Any, poll: Any
) -> None:
    """Under /flower with basic auth: the live stream connects, a task appears, a button acts
    (its request carries the prefix and the page's CSRF token)."""
    cluster = Cluster(
        tmp_path,
        f"sqlite:///{tmp_path / 'broker.sqlite3'}",
        dashboard_toml='passwords = ["admin:pw-behind-proxy"]\n',
        url_prefix="/flower",
        credentials={"Authorization": "Basic YWRtaW46cHctYmVoaW5kLXByb3h5"},  # admin:pw-behind-proxy
    )
    client = Celeriac("client", config=str(tmp_path / "celeriac.toml"), env={})
    context = browser.new_context(http_credentials={"username": "admin", "password": "pw-behind-proxy"})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        hostname = "w1@prefixed"
        cluster.start_worker(hostname)
        cluster.start_dashboard()
        poll(lambda: cluster.get("/api/workers?status=true").get(hostname), 20, "worker online")
        page.goto(cluster.base + "/tasks")
        _live(page)
        result = client.send_task("proj.add", (2, 3))
        assert result.get(timeout=20) == 5
        page.wait_for_selector(f'tr[data-task="{result.id}"][data-state="SUCCESS"]')
        page.goto(f"{cluster.base}/worker/{hostname}")
        page.wait_for_selector("#pool-size b")
        page.click("#pool-grow")
        page.wait_for_selector("#flash.ok")
        stats = cluster.get(f"/api/workers?workername={hostname}&refresh=1")[hostname]["stats"]
        assert stats["pool"]["max-concurrency"] == 2
        shoot(page, "prefixed-worker")
    finally:
        context.close()
        client.close()
        cluster.processes.kill()
