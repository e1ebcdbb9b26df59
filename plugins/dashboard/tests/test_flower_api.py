"""Every Flower endpoint of the issue, against a real celeriac worker (prefork, SQLite), and
a restart of the dashboard that loses nothing.

Each endpoint is checked for its answer (Flower's status, message and JSON) and for its
effect on the worker or the task: a result computed, a task aborted, revoked, terminated,
killed by a time limit, spaced by a rate limit, a queue consumed and no longer, a pool
grown, shrunk and autoscaled, a worker shut down.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.testing import wait_for

from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

HOST = "w1@api"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A prefork worker (one child) and the dashboard with the project's app (``-A proj``)."""
    made = Cluster(tmp_path, f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    try:
        made.start_worker(HOST)
        made.start_dashboard(with_app=True)
        wait_for(lambda: made.get("/api/workers?status=true").get(HOST), 20, "worker online")
        yield made
    finally:
        made.processes.kill()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Celeriac]:
    app = Celeriac("client", config=str(cluster.directory / "celeriac.toml"), env={})
    yield app
    app.close()


def _info(cluster: Cluster, task_id: str) -> dict[str, Any] | None:
    reply = cluster.request("GET", f"/api/task/info/{task_id}")
    return reply.json() if reply.status == 200 else None


def _state(cluster: Cluster, task_id: str) -> str | None:
    info = _info(cluster, task_id)
    return None if info is None else info["state"]


def _stats(cluster: Cluster) -> dict[str, Any]:
    stats: dict[str, Any] = cluster.get(f"/api/workers?refresh=1&workername={HOST}")[HOST]["stats"]
    return stats


def _queues(cluster: Cluster) -> list[str]:
    info = cluster.get(f"/api/workers?refresh=1&workername={HOST}")[HOST]
    return [queue["name"] for queue in info["active_queues"]]


def test_send_tasks_read_results_and_abort(cluster: Cluster) -> None:
    applied = cluster.post_json("/api/task/apply/proj.add", {"args": [2, 3]})
    assert applied.status == 200
    assert applied.json() == {"task-id": applied.json()["task-id"], "result": 5, "state": "SUCCESS"}
    failed = cluster.post_json("/api/task/apply/proj.fail", {}).json()
    assert failed["state"] == "FAILURE" and "broken on purpose" in failed["result"]
    assert "ValueError: broken on purpose" in failed["traceback"]
    assert cluster.post_json("/api/task/apply/proj.nope", {}).status == 404
    assert cluster.request("POST", "/api/task/apply/proj.add", b"{not json").status == 400
    assert cluster.post_json("/api/task/apply/proj.add", {"args": [1, 1], "bogus": 1}).status == 400

    queued = cluster.post_json("/api/task/async-apply/proj.add", {"args": [4, 5]}).json()
    assert set(queued) == {"task-id", "state"} and queued["state"] in ("PENDING", "SUCCESS")
    result = cluster.get(f"/api/task/result/{queued['task-id']}?timeout=20")
    assert result == {"task-id": queued["task-id"], "state": "SUCCESS", "result": 9}
    later = cluster.post_json(
        "/api/task/async-apply/proj.add", {"args": [1, 2], "kwargs": {}, "countdown": 1}
    ).json()
    assert cluster.get(f"/api/task/result/{later['task-id']}") == {
        "task-id": later["task-id"],
        "state": "PENDING",
    }
    assert cluster.get(f"/api/task/result/{later['task-id']}?timeout=20")["result"] == 3

    # send-task: by name, registered in the dashboard's app or not (a Celery cluster's tasks).
    sent = cluster.post_json("/api/task/send-task/proj.add", {"args": [20, 22]}).json()
    assert cluster.get(f"/api/task/result/{sent['task-id']}?timeout=20")["result"] == 42
    unknown = cluster.post_json("/api/task/send-task/proj.elsewhere", {}).json()
    refused = cluster.get(f"/api/task/result/{unknown['task-id']}?timeout=20")
    assert refused["state"] == "FAILURE" and "proj.elsewhere" in refused["result"]

    # abort: the ABORTED state an abortable task polls for.
    running = cluster.post_json("/api/task/async-apply/proj.abortable", {}).json()["task-id"]
    wait_for(lambda: _state(cluster, running) == "STARTED", 20, "the abortable task started")
    aborted = cluster.request("POST", f"/api/task/abort/{running}")
    assert aborted.json() == {"message": f"Aborted '{running}'"}
    assert cluster.get(f"/api/task/result/{running}?timeout=20")["result"] == "aborted"

    # The task list and one task, as the events told them.
    info = _info(cluster, applied.json()["task-id"])
    assert info is not None and info["state"] == "SUCCESS" and info["worker"] == HOST
    assert info["args"] == "(2, 3)" and info["result"] == "5"
    wait_for(lambda: _state(cluster, sent["task-id"]) == "SUCCESS", 20, "send-task's success")
    tasks = cluster.get("/api/tasks?taskname=proj.add&state=SUCCESS")
    assert {applied.json()["task-id"], queued["task-id"], sent["task-id"]} <= set(tasks)
    first, second = cluster.get("/api/tasks?limit=3&offset=0"), cluster.get("/api/tasks?limit=3&offset=3")
    assert len(first) == len(second) == 3 and not set(first) & set(second)
    today = dt.datetime.now().strftime("%Y-%m-%d")
    window = cluster.get(f"/api/tasks?received_start={today}%2000:00&received_end={today}%2023:59")
    assert applied.json()["task-id"] in window
    assert cluster.get("/api/tasks?received_start=2001-01-01%2000:00&received_end=2001-01-02%2000:00") == {}
    assert cluster.request("GET", "/api/tasks?received_start=yesterday").status == 400
    assert list(cluster.get("/api/tasks?search=20,%2022")) == [sent["task-id"]]
    assert "proj.abortable" in cluster.get("/api/task/types")["task-types"]
    assert cluster.get("/api/queues/length") == {"active_queues": [{"name": "celery", "messages": 0}]}
    huge = "9" * 40  # past SQLite's integers: refused with the range, never a server error
    bad = (f"/api/tasks?limit={huge}", f"/api/dashboard/dead-letters?limit={huge}", "/api/tasks?offset=-3")
    for path in bad:
        reply = cluster.request("GET", path)
        assert reply.status == 400 and reply.text.startswith("Invalid argument"), (path, reply)
    assert cluster.request("GET", "/api/task/result/x?timeout=nan").text == (
        "Invalid argument timeout='nan': expected 0 to 3600"
    )
    assert "celeriac_tasks_total" in cluster.get_text("/metrics")
    assert cluster.get_text("/healthcheck") == "OK"


def test_revoke_terminate_and_task_limits(cluster: Cluster, client: Celeriac) -> None:
    # revoke: a task due later is refused when it comes due.
    later = client.send_task("proj.add", (7, 7), countdown=3)
    revoked = cluster.request("POST", f"/api/task/revoke/{later.id}")
    assert revoked.json() == {"message": f"Revoked '{later.id}'"}
    assert cluster.get(f"/api/task/result/{later.id}?timeout=30")["state"] == "REVOKED"

    # revoke with terminate: the running task's child process is killed.
    sleeping = client.send_task("proj.sleepy", (60,))
    wait_for(lambda: _state(cluster, sleeping.id) == "STARTED", 20, "the sleeping task started")
    started = time.monotonic()
    terminated = cluster.request("POST", f"/api/task/revoke/{sleeping.id}?terminate=true&signal=SIGKILL")
    assert terminated.status == 200
    assert cluster.get(f"/api/task/result/{sleeping.id}?timeout=30")["state"] == "REVOKED"
    assert time.monotonic() - started < 30

    # timeout: a hard limit set on the worker kills a task that runs past it.
    path = f"/api/task/timeout/proj.sleepy?workername={HOST}&hard=1"
    limited = cluster.request("POST", path)
    assert limited.json() == {"message": "time limits of proj.sleepy set to soft=None hard=1.0"}
    killed = client.send_task("proj.sleepy", (30,))
    outcome = cluster.get(f"/api/task/result/{killed.id}?timeout=30")
    assert outcome["state"] == "FAILURE" and "TimeLimitExceeded" in outcome["result"]
    assert cluster.request("POST", "/api/task/timeout/proj.sleepy?workername=nobody&hard=1").status == 404
    assert cluster.request("POST", "/api/task/timeout/proj.sleepy?hard=1").status == 400

    # rate-limit: 30 a minute spaces three tasks over at least 4 s on this worker.
    spaced = cluster.request("POST", f"/api/task/rate-limit/proj.add?workername={HOST}&ratelimit=30/m")
    assert spaced.json() == {"message": "rate limit of proj.add set to 30/m"}
    results = [client.send_task("proj.add", (n, n)) for n in range(3)]
    assert [r.get(timeout=30) for r in results] == [0, 2, 4]
    starts = [
        wait_for(lambda r=r: (_info(cluster, r.id) or {}).get("started"), 20, "started") for r in results
    ]
    assert max(starts) - min(starts) >= 3.5, starts
    refused = cluster.request("POST", f"/api/task/rate-limit/proj.nope?workername={HOST}&ratelimit=1/s")
    assert (refused.status, refused.text) == (403, "Failed to set rate limit: 'unknown task 'proj.nope''")
    cleared = cluster.request("POST", f"/api/task/rate-limit/proj.add?workername={HOST}&ratelimit=0")
    assert cleared.status == 200


def test_pool_and_consumer_controls_then_shutdown(cluster: Cluster, client: Celeriac) -> None:
    grown = cluster.request("POST", f"/api/worker/pool/grow/{HOST}?n=2")
    assert grown.json() == {"message": f"Growing '{HOST}' worker's pool by 2"}
    pool = _stats(cluster)["pool"]
    assert (pool["max-concurrency"], pool["target"]) == (3, 3)
    shrunk = cluster.request("POST", f"/api/worker/pool/shrink/{HOST}", b"n=1", _FORM)  # a form body
    assert shrunk.json() == {"message": f"Shrinking '{HOST}' worker's pool by 1"}
    assert _stats(cluster)["pool"]["target"] == 2  # the maximum stays; one child fewer runs
    scaled = cluster.request("POST", f"/api/worker/pool/autoscale/{HOST}?min=1&max=4")
    assert scaled.json() == {"message": f"Autoscaling '{HOST}' worker (min=1, max=4)"}
    pool = _stats(cluster)["pool"]
    assert (pool["min_concurrency"], pool["max_concurrency"]) == (1, 4)
    assert cluster.request("POST", f"/api/worker/pool/autoscale/{HOST}?min=1").text == "Missing argument max"
    too_many = cluster.request("POST", f"/api/worker/pool/grow/{HOST}?n=100000")
    assert (too_many.status, too_many.text) == (400, "Invalid argument n='100000': expected 1 to 1000")
    assert _stats(cluster)["pool"]["max_concurrency"] == 4
    # pool restart replaces every child of the prefork pool (idle ones at once).
    before = set(_stats(cluster)["pool"]["processes"])
    restart = cluster.request("POST", f"/api/worker/pool/restart/{HOST}")
    assert (restart.status, restart.json()) == (200, {"message": f"Restarting '{HOST}' worker's pool"})
    # Autoscaling (min=1) may run fewer children afterwards; none of them is an old one.
    wait_for(
        lambda: (after := set(_stats(cluster)["pool"]["processes"])) and not after & before,
        20,
        "every child replaced",
    )

    added = cluster.request("POST", f"/api/worker/queue/add-consumer/{HOST}?queue=extra")
    assert added.json() == {"message": "consuming from extra"}
    assert _queues(cluster) == ["celery", "extra"]
    assert client.send_task("proj.add", (1, 2), queue="extra").get(timeout=20) == 3
    cancelled = cluster.request("POST", f"/api/worker/queue/cancel-consumer/{HOST}?queue=extra")
    assert cancelled.json() == {"message": "no longer consuming from extra"}
    assert _queues(cluster) == ["celery"]
    client.send_task("proj.add", (1, 2), queue="extra")
    # The queue added is sampled from then on, and the message waits there (a fetch under
    # way when the consumer was cancelled gives it back: it is not run).
    wait_for(
        lambda: {"name": "extra", "messages": 1} in cluster.get("/api/queues/length")["active_queues"],
        10,
        "the message waiting in 'extra'",
    )
    last = cluster.request("POST", f"/api/worker/queue/cancel-consumer/{HOST}?queue=celery")
    assert last.status == 403 and "is the last queue this worker consumes" in last.text
    assert cluster.request("POST", f"/api/worker/queue/add-consumer/{HOST}").status == 400

    for path in ("pool/grow", "pool/shrink", "pool/restart", "queue/add-consumer?queue=q", "shutdown"):
        route, _, query = path.partition("?")
        reply = cluster.request("POST", f"/api/worker/{route}/nobody{'?' + query if query else ''}")
        assert (reply.status, reply.text) == (404, "Unknown worker 'nobody'"), path

    shutdown = cluster.request("POST", f"/api/worker/shutdown/{HOST}")
    assert shutdown.json() == {"message": "Shutting down!"}
    assert cluster.worker is not None
    assert cluster.worker.wait(timeout=30) == 0
    wait_for(lambda: cluster.get("/api/workers?status=true")[HOST] is False, 20, "the worker offline")


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_restart_of_the_dashboard_loses_nothing(cluster: Cluster, client: Celeriac) -> None:
    sent = [client.send_task("proj.add", (n, n)) for n in range(5)]
    sent.append(client.send_task("proj.fail"))
    for result in sent:
        result.get(timeout=20, propagate=False)
    done = {r.id for r in sent}
    wait_for(lambda: done <= set(cluster.get("/api/tasks?state=SUCCESS")) | _failed(cluster), 20, "all seen")
    before = {
        "tasks": cluster.get("/api/tasks"),
        "task": cluster.get(f"/api/dashboard/task/{sent[0].id}"),
        "types": cluster.get("/api/task/types"),
        "workers": cluster.get("/api/dashboard/workers"),
        "counts": _counts(cluster),
    }
    # Killed, not stopped: what the dashboard showed was already on disk.
    assert cluster.dashboard is not None
    cluster.dashboard.signal(signal.SIGKILL)
    cluster.dashboard.wait(timeout=10)
    cluster.start_dashboard(with_app=True)
    assert cluster.get("/api/tasks") == before["tasks"]
    assert cluster.get(f"/api/dashboard/task/{sent[0].id}") == before["task"]
    assert cluster.get("/api/task/types") == before["types"]
    assert [w["hostname"] for w in cluster.get("/api/dashboard/workers")["workers"]] == [HOST]
    assert _counts(cluster) == before["counts"]
    assert cluster.get("/api/workers?status=true") == {HOST: True}  # its last heartbeat, kept
    # And it goes on: a task after the restart joins the ones before it.
    after = client.send_task("proj.add", (100, 1))
    assert after.get(timeout=20) == 101
    wait_for(lambda: _state(cluster, after.id) == "SUCCESS", 20, "the new task")
    assert set(cluster.get("/api/tasks")) == set(before["tasks"]) | {after.id}


def _counts(cluster: Cluster) -> dict[str, int]:
    """The graphs' task counts of the last hour, by event kind."""
    series = cluster.get("/api/dashboard/graphs?minutes=60")["by_state"]["series"]
    return {kind: sum(values) for kind, values in series.items()}


def _failed(cluster: Cluster) -> set[str]:
    return set(cluster.get("/api/tasks?state=FAILURE"))
