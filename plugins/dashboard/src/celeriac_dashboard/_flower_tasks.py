"""Flower's read-only task endpoints: the task list, one task, task types, queue lengths, a result.

Flower reads Celery's in-memory state; these read the dashboard's history (events, folded)
and, for results, the result store.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import Response

from celeriac.plugin import TimeoutError as ResultTimeout
from celeriac_dashboard._services import arguments
from celeriac_dashboard._services import number
from celeriac_dashboard._services import safe_json
from celeriac_dashboard._services import services
from celeriac_dashboard._services import task_query

#: The keys of a task in Flower's JSON (celery.events.state.Task._fields), in its order.
TASK_FIELDS = (
    "uuid", "name", "state", "received", "sent", "started", "rejected", "succeeded", "failed",
    "retried", "revoked", "args", "kwargs", "eta", "expires", "retries", "worker", "result",
    "exception", "timestamp", "runtime", "traceback", "exchange", "routing_key", "clock",
    "client", "root", "root_id", "parent", "parent_id", "children",
)  # fmt: skip


def flower_task(data: dict[str, Any], children: list[str]) -> dict[str, Any]:
    """A stored task in Flower's shape."""
    shaped = {key: data.get(key) for key in TASK_FIELDS}
    shaped.update(root=data.get("root_id"), parent=data.get("parent_id"), children=children)
    return shaped


def outcome(result: Any) -> dict[str, Any]:
    """``result`` (and ``traceback`` of a failure) of a finished task, as Flower shows them."""
    if result.state == "FAILURE":
        return {"result": safe_json(repr(result.result)), "traceback": result.traceback}
    return {"result": safe_json(result.result)}


async def list_tasks(request: Request) -> Response:
    svc, args = services(request), await arguments(request)
    query = task_query(args, default_limit=None)
    try:
        page = await run_in_threadpool(svc.monitor.history.tasks, query)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    history = svc.monitor.history
    return JSONResponse(
        {task["uuid"]: flower_task(task, history.children(task["uuid"])) for task in page.tasks}
    )


async def task_types(request: Request) -> Response:
    names = await run_in_threadpool(services(request).monitor.history.task_types)
    return JSONResponse({"task-types": names})


async def task_info(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    task = await run_in_threadpool(svc.monitor.history.task, task_id)
    if task is None:
        raise HTTPException(404, f"Unknown task '{task_id}'")
    return JSONResponse(flower_task(task, svc.monitor.history.children(task_id)))


async def queue_lengths(request: Request) -> Response:
    lengths = await run_in_threadpool(services(request).monitor.sample_queues)
    return JSONResponse(
        {"active_queues": [{"name": q, "messages": n} for q, n in lengths.items() if n is not None]}
    )


async def task_result(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    timeout = number(await arguments(request), "timeout", float)
    if svc.monitor.app.result_store_url is None:
        raise HTTPException(503)

    def read() -> dict[str, Any]:
        result = svc.monitor.app.AsyncResult(task_id)
        response: dict[str, Any] = {"task-id": task_id, "state": result.state}
        if timeout:
            with contextlib.suppress(ResultTimeout):
                result.get(timeout=timeout, propagate=False)
            response.update(state=result.state, **outcome(result))
        elif result.ready():
            response.update(outcome(result))
        return response

    return JSONResponse(await run_in_threadpool(read))
