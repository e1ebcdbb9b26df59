"""The pages, the live stream and the dashboard's own API (``/api/dashboard/...``).

A page is rendered whole on first load; with ``?fragment=1`` only its live part, which
the page's script fetches again whenever the live stream says its data changed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import RedirectResponse
from starlette.responses import Response
from starlette.responses import StreamingResponse
from starlette.routing import Route

from celeriac.plugin import ConfigError
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import StoredSchedule
from celeriac_dashboard import _views
from celeriac_dashboard._graphs import graphs
from celeriac_dashboard._openapi import openapi
from celeriac_dashboard._services import arguments
from celeriac_dashboard._services import number
from celeriac_dashboard._services import services
from celeriac_dashboard._services import task_query


def _prefix(request: Request) -> str:
    prefix: str = request.app.state.prefix
    return prefix


def _page(request: Request, template: str, data: dict[str, Any], page: str) -> Response:
    svc = services(request)
    context = {
        **data,
        "page": page,
        "prefix": _prefix(request),
        "csrf_token": svc.guard.csrf_token,
        "read_only": svc.settings.read_only,
        "fragment": request.query_params.get("fragment") == "1",
    }
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, template, context)
    return response


async def index(request: Request) -> Response:
    return RedirectResponse(f"{_prefix(request)}/workers")


async def workers_page(request: Request) -> Response:
    data = await run_in_threadpool(_views.workers, services(request))
    return _page(request, "workers.html", data, "workers")


async def worker_page(request: Request) -> Response:
    svc, name = services(request), request.path_params["name"]
    if request.query_params.get("fragment") != "1" or request.query_params.get("refresh") == "1":
        await run_in_threadpool(svc.inspector.refresh, name)
    data = await run_in_threadpool(_views.worker, svc, name)
    if data is None:
        raise HTTPException(404, f"Unknown worker '{name}'")
    return _page(request, "worker.html", data, "workers")


async def tasks_page(request: Request) -> Response:
    args = await arguments(request)
    query = task_query(args, default_limit=_views.PAGE_SIZE)
    try:
        data = await run_in_threadpool(_views.tasks, services(request), query)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _page(request, "tasks.html", {**data, "args": args}, "tasks")


async def task_page(request: Request) -> Response:
    uuid = request.path_params["task_id"]
    data = await run_in_threadpool(_views.task, services(request), uuid, _prefix(request))
    if data is None:
        raise HTTPException(404, f"Unknown task '{uuid}'")
    return _page(request, "task.html", data, "tasks")


async def queues_page(request: Request) -> Response:
    data = await run_in_threadpool(_views.queues, services(request))
    return _page(request, "queues.html", data, "queues")


async def dead_letters_page(request: Request) -> Response:
    queue = request.query_params.get("queue")
    data = await run_in_threadpool(_views.dead_letters, services(request), queue, 200)
    return _page(request, "dead_letters.html", {**data, "queue": queue or ""}, "dead-letters")


async def schedule_page(request: Request) -> Response:
    data = await run_in_threadpool(_views.schedule, services(request))
    return _page(request, "schedule.html", data, "schedule")


async def graphs_page(request: Request) -> Response:
    return _page(request, "graphs.html", {}, "graphs")


async def live(request: Request) -> Response:
    stream = services(request).monitor.hub.stream(request.is_disconnected)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


# --- the dashboard's own API --------------------------------------------------------------


async def api_workers(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_views.workers, services(request)))


async def api_tasks(request: Request) -> Response:
    query = task_query(await arguments(request), default_limit=_views.PAGE_SIZE)
    try:
        data = await run_in_threadpool(_views.tasks, services(request), query)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return JSONResponse({"total": data["total"], "tasks": data["tasks"]})


async def api_task(request: Request) -> Response:
    uuid = request.path_params["task_id"]
    data = await run_in_threadpool(_views.task, services(request), uuid, _prefix(request))
    if data is None:
        raise HTTPException(404, f"Unknown task '{uuid}'")
    return JSONResponse(data)


async def api_queues(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_views.queues, services(request)))


async def api_dead_letters(request: Request) -> Response:
    args = await arguments(request)
    limit = number(args, "limit", int, 100)
    return JSONResponse(
        await run_in_threadpool(_views.dead_letters, services(request), args.get("queue"), limit)
    )


async def requeue_dead_letter(request: Request) -> Response:
    svc, letter = services(request), request.path_params["letter_id"]
    if not await run_in_threadpool(svc.monitor.app.transport.requeue_dead_letter, letter):
        raise HTTPException(404, f"Unknown dead letter '{letter}'")
    return JSONResponse({"message": f"Requeued '{letter}'"})


async def purge_dead_letters(request: Request) -> Response:
    svc = services(request)
    queue = (await arguments(request)).get("queue") or None
    transport = svc.monitor.app.transport
    if not isinstance(transport, DeadLetterPurger):
        scheme = svc.monitor.app.config.broker.partition(":")[0]
        raise HTTPException(501, f"the {scheme} transport cannot purge dead letters")
    count = await run_in_threadpool(transport.purge_dead_letters, queue)
    return JSONResponse({"message": f"Purged {count} dead letters", "purged": count})


async def api_schedule(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_views.schedule, services(request)))


async def put_schedule_entry(request: Request) -> Response:
    svc, name = services(request), request.path_params["name"]
    try:
        table = json.loads(await request.body())
    except ValueError as exc:
        raise HTTPException(400, f"the entry is not JSON: {exc}") from exc
    if not isinstance(table, dict):
        raise HTTPException(400, "the entry must be a JSON object, as a [beat.schedule.NAME] table")

    def add() -> str:
        with StoredSchedule(svc.monitor.app) as stored:
            return stored.add(name, table).task

    try:
        task_name = await run_in_threadpool(add)
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from exc
    return JSONResponse({"message": f"Stored '{name}' ({task_name})"})


async def delete_schedule_entry(request: Request) -> Response:
    svc, name = services(request), request.path_params["name"]

    def remove() -> bool:
        with StoredSchedule(svc.monitor.app) as stored:
            return stored.remove(name)

    if not await run_in_threadpool(remove):
        raise HTTPException(404, f"the schedule store has no entry '{name}'")
    return JSONResponse({"message": f"Removed '{name}'"})


async def api_graphs(request: Request) -> Response:
    minutes = number(await arguments(request), "minutes", int, 60)
    history = services(request).monitor.history
    return JSONResponse(await run_in_threadpool(graphs, history, time.time(), minutes))


async def openapi_document(request: Request) -> Response:
    return JSONResponse(openapi(_prefix(request)))


ROUTES = [
    Route("/", index),
    Route("/workers", workers_page),
    Route("/worker/{name:path}", worker_page),
    Route("/tasks", tasks_page),
    Route("/task/{task_id:path}", task_page),
    Route("/queues", queues_page),
    Route("/broker", queues_page),
    Route("/dead-letters", dead_letters_page),
    Route("/schedule", schedule_page),
    Route("/graphs", graphs_page),
    Route("/live", live),
    Route("/openapi.json", openapi_document),
    Route("/api/dashboard/workers", api_workers),
    Route("/api/dashboard/tasks", api_tasks),
    Route("/api/dashboard/task/{task_id:path}", api_task),
    Route("/api/dashboard/queues", api_queues),
    Route("/api/dashboard/dead-letters", api_dead_letters),
    Route("/api/dashboard/dead-letters/purge", purge_dead_letters, methods=["POST"]),
    Route("/api/dashboard/dead-letters/{letter_id:path}/requeue", requeue_dead_letter, methods=["POST"]),
    Route("/api/dashboard/schedule", api_schedule),
    Route("/api/dashboard/schedule/{name:path}", put_schedule_entry, methods=["PUT"]),
    Route("/api/dashboard/schedule/{name:path}", delete_schedule_entry, methods=["DELETE"]),
    Route("/api/dashboard/graphs", api_graphs),
]
