"""Flower 2, started as a subprocess on the same broker, shows celeriac workers and their tasks.

What Flower shows comes from two sources: events (``/api/workers?status=true``, the task
list ``/api/tasks``) and remote-control replies (``/api/workers`` without ``status``: the
worker pages), which celeriac workers send where Celery's clients read them (see
test_remote_control_interop.py).
"""

from __future__ import annotations

import secrets
import signal
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def test_flower_shows_celeriac_workers_and_tasks(project: Any, client: Any, flower: Any, poll: Any) -> None:
    hostname = f"w-{secrets.token_hex(3)}@interop"
    worker = project.celeriac_worker(hostname)
    poll(lambda: flower.get("/api/workers?status=true").get(hostname), 15, "worker online in Flower")

    add, fail = client.tasks["proj.add"], client.tasks["proj.fail"]
    ids = {add.delay(2, 3).id: "SUCCESS", add.delay(4, y=5).id: "SUCCESS", fail.delay().id: "FAILURE"}

    def settled() -> dict[str, Any] | None:
        # The client's task-sent events come from its own buffer, which may flush after the
        # worker's events: settled means final states and the sent events both seen.
        tasks = flower.get("/api/tasks")
        done = all(
            tasks.get(task_id, {}).get("state") == state and tasks[task_id].get("sent")
            for task_id, state in ids.items()
        )
        return tasks if done else None

    tasks = poll(settled, 20, f"tasks settled in Flower\n{worker.output()}")
    for task_id in ids:
        task = tasks[task_id]
        assert task["worker"] == hostname
        assert task["name"] in ("proj.add", "proj.fail")
        assert task["received"] and task["started"]
        # task-sent, from the client (task_send_sent_event = true)
        assert task["client"] == client.origin and task["sent"]
    first = tasks[next(iter(ids))]
    assert (first["args"], first["kwargs"]) == ("(2, 3)", "{}")
    assert first["runtime"] is not None
    failed = next(tasks[i] for i, state in ids.items() if state == "FAILURE")
    assert failed["exception"] == "ValueError: broken on purpose" and "Traceback" in failed["traceback"]

    info = flower.get(f"/api/task/info/{next(iter(ids))}")
    assert info["state"] == "SUCCESS" and info["worker"] == hostname

    worker.signal(signal.SIGTERM)
    worker.wait(timeout=30)
    poll(lambda: flower.get("/api/workers?status=true").get(hostname) is False, 15, "worker offline")


def test_flower_worker_pages_show_a_celeriac_workers_replies(project: Any, flower: Any, poll: Any) -> None:
    hostname = f"w-{secrets.token_hex(3)}@interop"
    project.celeriac_worker(hostname)
    poll(lambda: flower.get("/api/workers?status=true").get(hostname), 15, "worker online in Flower")

    def inspected() -> dict[str, Any] | None:
        info = flower.get("/api/workers?refresh=1").get(hostname) or {}
        return info if {"stats", "registered", "active_queues", "conf"} <= info.keys() else None

    info = poll(inspected, 30, "Flower's inspect replies")
    assert info["stats"]["sw_ident"] == "celeriac"
    assert info["stats"]["pool"]["max-concurrency"] >= 1
    assert "proj.add" in info["registered"]
    assert {"name": "celery", "routing_key": "celery"} in info["active_queues"]
    one = flower.get(f"/api/workers?workername={hostname}&refresh=1")[hostname]
    assert one["active"] == one["reserved"] == one["scheduled"] == []
    assert isinstance(one["revoked"], list)
