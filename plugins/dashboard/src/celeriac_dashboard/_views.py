"""What each page shows, as plain data: read by the HTML pages and by the JSON API alike."""

from __future__ import annotations

import time
from typing import Any

import attrs

from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import StoredSchedule
from celeriac.plugin import redact_url
from celeriac.plugin import schedule_rows
from celeriac_dashboard._query import TaskQuery
from celeriac_dashboard._services import Services
from celeriac_dashboard._workflow import svg

#: The task-list page's rows per page.
PAGE_SIZE = 50
STATES = ("PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED")


def workers(svc: Services) -> dict[str, Any]:
    rows = svc.monitor.worker_rows(time.time())
    inspected = svc.inspector.cached()
    for row in rows:
        stats = inspected.get(row["hostname"], {}).get("stats") or {}
        row["concurrency"] = (stats.get("pool") or {}).get("max-concurrency")
    return {"workers": rows, "broker": redact_url(svc.monitor.app.config.broker)}


def worker(svc: Services, name: str) -> dict[str, Any] | None:
    rows = {row["hostname"]: row for row in svc.monitor.worker_rows(time.time())}
    info = svc.inspector.cached().get(name)
    if name not in rows and info is None:
        return None
    return {"hostname": name, "events": rows.get(name), "inspect": info or {}}


def tasks(svc: Services, query: TaskQuery) -> dict[str, Any]:
    page = svc.monitor.history.tasks(query)
    return {
        "tasks": page.tasks,
        "total": page.total,
        "offset": query.offset,
        "limit": query.limit,
        "types": svc.monitor.history.task_types(),
        "workers": svc.monitor.history.worker_names(),
        "states": STATES,
    }


def task(svc: Services, uuid: str, prefix: str) -> dict[str, Any] | None:
    history = svc.monitor.history
    found = history.task(uuid)
    if found is None:
        return None
    timeline = [
        {
            "type": event.get("type"),
            "timestamp": event.get("timestamp"),
            "hostname": event.get("hostname"),
            "detail": event.get("exception") or event.get("result") or "",
        }
        for event in history.events_of([uuid])
    ]
    family = history.family(found.get("root_id") or uuid)
    return {
        "task": found,
        "timeline": sorted(timeline, key=lambda e: e["timestamp"] or 0),
        "children": history.children(uuid),
        "workflow": family,
        "graph": svg(family, uuid, prefix) if len(family) > 1 else "",
    }


def queues(svc: Services) -> dict[str, Any]:
    lengths = dict(svc.monitor.queue_lengths)
    consumers: dict[str, list[str]] = {}
    for hostname, info in svc.inspector.cached().items():
        for queue in info.get("active_queues") or ():
            consumers.setdefault(queue.get("name", "?"), []).append(hostname)
    since = time.time() - 60
    samples: dict[str, list[tuple[float, int]]] = {}
    for at, queue, length in svc.monitor.history.queue_samples(since):
        if length is not None:
            samples.setdefault(queue, []).append((at, length))
    rows = []
    for name in sorted(set(lengths) | set(consumers)):
        points = samples.get(name, [])
        rate = None
        if len(points) >= 2 and points[-1][0] > points[0][0]:
            rate = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]) * 60
        rows.append(
            {"name": name, "messages": lengths.get(name), "consumers": consumers.get(name, []), "rate": rate}
        )
    return {"queues": rows}


def dead_letters(svc: Services, queue: str | None, limit: int) -> dict[str, Any]:
    letters = svc.monitor.app.transport.dead_letters(queue or None, limit)
    return {
        "dead_letters": [
            {
                "id": letter.id,
                "queue": letter.queue,
                "reason": letter.reason,
                "failed_at": letter.failed_at,
                "task": letter.envelope.headers.get("task"),
                "task_id": letter.envelope.headers.get("id"),
                "argsrepr": letter.envelope.headers.get("argsrepr"),
            }
            for letter in letters
        ],
        "can_purge": isinstance(svc.monitor.app.transport, DeadLetterPurger),
    }


def schedule(svc: Services) -> dict[str, Any]:
    try:
        with StoredSchedule(svc.monitor.app) as stored:
            rows = schedule_rows(stored, time.time())
            url = redact_url(stored.url)
    except Exception as exc:  # no store, a broken entry: the page says why
        return {"entries": [], "store": None, "error": str(exc)}
    return {"entries": [attrs.asdict(row) for row in rows], "store": url, "error": None}
