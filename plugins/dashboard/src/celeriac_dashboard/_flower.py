"""Flower's HTTP API: the same paths, arguments, JSON shapes, status codes and messages.

Scripts written against Flower 2.2 work unchanged. Where Flower reads Celery's in-memory
state, these read the dashboard's (events, folded, and the history); where Flower calls
``app.control``, these call celeriac's, which reaches Celery and celeriac workers alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.responses import Response
from starlette.routing import Route

from celeriac.plugin import TimeoutError as ResultTimeout
from celeriac_dashboard._services import Services
from celeriac_dashboard._services import arguments
from celeriac_dashboard._services import flag
from celeriac_dashboard._services import number
from celeriac_dashboard._services import required
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
#: Flower's format of ``eta`` and ``expires`` in apply requests.
DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def flower_task(data: dict[str, Any], children: list[str]) -> dict[str, Any]:
    """A stored task in Flower's shape."""
    shaped = {key: data.get(key) for key in TASK_FIELDS}
    shaped.update(root=data.get("root_id"), parent=data.get("parent_id"), children=children)
    return shaped


def _read_only(svc: Services) -> None:
    if svc.settings.read_only:
        raise HTTPException(403, "Read only mode is enabled")


def _known_worker(svc: Services, name: str) -> None:
    with svc.monitor.lock:
        seen = name in svc.monitor.state.workers
    if not (seen or name in svc.inspector.cached()):
        raise HTTPException(404, f"Unknown worker '{name}'")


# --- workers ----------------------------------------------------------------------------


async def list_workers(request: Request) -> Response:
    svc, args = services(request), await arguments(request)
    workername = args.get("workername")
    if flag(args.get("refresh")):
        try:
            await run_in_threadpool(svc.inspector.refresh, workername)
        except Exception as exc:
            raise HTTPException(503, f"Failed to update workers: {exc}") from exc
    if flag(args.get("status")):
        now = __import__("time").time()
        with svc.monitor.lock:
            return JSONResponse({name: w.alive(now) for name, w in svc.monitor.state.workers.items()})
    workers = svc.inspector.cached()
    if workername:
        if workername not in workers:
            raise HTTPException(404, f"Unknown worker '{workername}'")
        return JSONResponse({workername: workers[workername]})
    return JSONResponse(workers)


async def _control(request: Request, method: str, arguments_: dict[str, Any], success: str) -> Response:
    svc = services(request)
    _read_only(svc)
    name = request.path_params["name"]
    _known_worker(svc, name)
    reply = await run_in_threadpool(svc.inspector.command, name, method, arguments_)
    if reply.succeeded:
        return JSONResponse({"message": success.format(ok=reply.ok)})
    return PlainTextResponse(f"{_FAILURES[method].format(name=name, **arguments_)}: {reply.error}", 403)


_FAILURES = {
    "pool_restart": "Failed to restart the '{name}' pool",
    "pool_grow": "Failed to grow '{name}' worker's pool",
    "pool_shrink": "Failed to shrink '{name}' worker's pool",
    "autoscale": "Failed to autoscale '{name}' worker",
    "add_consumer": "Failed to add '{queue}' consumer to '{name}' worker",
    "cancel_consumer": "Failed to cancel '{queue}' consumer from '{name}' worker",
}


async def worker_shutdown(request: Request) -> Response:
    svc = services(request)
    _read_only(svc)
    name = request.path_params["name"]
    _known_worker(svc, name)
    await run_in_threadpool(svc.inspector.shutdown, name)
    return JSONResponse({"message": "Shutting down!"})


async def pool_restart(request: Request) -> Response:
    name = request.path_params["name"]
    return await _control(request, "pool_restart", {"reload": False}, f"Restarting '{name}' worker's pool")


async def pool_grow(request: Request) -> Response:
    n = number(await arguments(request), "n", int, 1)
    name = request.path_params["name"]
    return await _control(request, "pool_grow", {"n": n}, f"Growing '{name}' worker's pool by {n}")


async def pool_shrink(request: Request) -> Response:
    n = number(await arguments(request), "n", int, 1)
    name = request.path_params["name"]
    return await _control(request, "pool_shrink", {"n": n}, f"Shrinking '{name}' worker's pool by {n}")


async def pool_autoscale(request: Request) -> Response:
    args = await arguments(request)
    low, high = number(args, "min", int), number(args, "max", int)
    if low is None or high is None:
        raise HTTPException(400, "Missing argument min" if low is None else "Missing argument max")
    name = request.path_params["name"]
    message = f"Autoscaling '{name}' worker (min={low}, max={high})"
    return await _control(request, "autoscale", {"min": low, "max": high}, message)


async def add_consumer(request: Request) -> Response:
    queue = required(await arguments(request), "queue")
    services(request).monitor.watch_queue(queue)
    return await _control(request, "add_consumer", {"queue": queue}, "{ok}")


async def cancel_consumer(request: Request) -> Response:
    queue = required(await arguments(request), "queue")
    return await _control(request, "cancel_consumer", {"queue": queue}, "{ok}")


# --- tasks ------------------------------------------------------------------------------


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


async def _task_arguments(request: Request) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    body = await request.body()
    try:
        options = __import__("json").loads(body) if body else {}
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if not isinstance(options, dict):
        raise HTTPException(400, "invalid options")
    args, kwargs = options.pop("args", []), options.pop("kwargs", {})
    if not isinstance(args, list):
        raise HTTPException(400, "args must be an array")
    try:
        if "eta" in options:
            options["eta"] = dt.datetime.strptime(options["eta"], DATE_FORMAT)
        if "countdown" in options:
            options["countdown"] = float(options["countdown"])
        if "expires" in options:
            try:
                options["expires"] = float(options["expires"])
            except ValueError:
                options["expires"] = dt.datetime.strptime(options["expires"], DATE_FORMAT)
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, "Invalid option") from exc
    return args, kwargs, options


def _publish(
    svc: Services,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    options: dict[str, Any],
    *,
    by_name: bool,
) -> Any:
    app = svc.monitor.app
    try:
        if by_name:
            return app.send_task(name, args, kwargs, **options)
        return app.tasks[name].apply_async(args, kwargs, **options)
    except TypeError as exc:
        raise HTTPException(400, f"Invalid option: {exc}") from exc


def _state_of(svc: Services, result: Any) -> dict[str, Any]:
    return {"state": result.state} if svc.monitor.app.result_store_url is not None else {}


def _outcome(result: Any) -> dict[str, Any]:
    if result.state == "FAILURE":
        return {"result": safe_json(repr(result.result)), "traceback": result.traceback}
    return {"result": safe_json(result.result)}


async def task_apply(request: Request) -> Response:
    svc, name = services(request), request.path_params["name"]
    _read_only(svc)
    args, kwargs, options = await _task_arguments(request)
    if name not in svc.monitor.app.tasks:
        raise HTTPException(404, f"Unknown task '{name}'")
    try:
        timeout = None if options.get("timeout") is None else float(options.pop("timeout"))
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, "Invalid timeout") from exc
    options.pop("timeout", None)

    def run() -> dict[str, Any]:
        result = _publish(svc, name, args, kwargs, options, by_name=False)
        response: dict[str, Any] = {"task-id": result.id}
        try:
            result.get(timeout=timeout, propagate=False)
        except ResultTimeout:
            response["state"] = result.state
        response.update(_outcome(result))
        response.update(_state_of(svc, result))
        return response

    return JSONResponse(await run_in_threadpool(run))


async def task_async_apply(request: Request, *, by_name: bool = False) -> Response:
    svc, name = services(request), request.path_params["name"]
    _read_only(svc)
    args, kwargs, options = await _task_arguments(request)
    if not by_name and name not in svc.monitor.app.tasks:
        raise HTTPException(404, f"Unknown task '{name}'")

    def run() -> dict[str, Any]:
        result = _publish(svc, name, args, kwargs, options, by_name=by_name)
        return {"task-id": result.id, **_state_of(svc, result)}

    return JSONResponse(await run_in_threadpool(run))


async def task_send(request: Request) -> Response:
    return await task_async_apply(request, by_name=True)


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
            response.update(state=result.state, **_outcome(result))
        elif result.ready():
            response.update(_outcome(result))
        return response

    return JSONResponse(await run_in_threadpool(read))


async def task_abort(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    _read_only(svc)
    app = svc.monitor.app
    if app.result_store_url is None:
        raise HTTPException(503)
    # Celery's AbortableTask protocol: the ABORTED state in the result store, which the
    # task polls with is_aborted().
    await run_in_threadpool(lambda: app.result_store.store(app.results.encode(task_id, "ABORTED", None)))
    return JSONResponse({"message": f"Aborted '{task_id}'"})


async def task_revoke(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    _read_only(svc)
    args = await arguments(request)
    terminate, signal = flag(args.get("terminate")), args.get("signal") or "SIGTERM"
    await run_in_threadpool(
        lambda: svc.monitor.app.control.revoke(task_id, terminate=terminate, signal=signal)
    )
    return JSONResponse({"message": f"Revoked '{task_id}'"})


async def _task_limit(request: Request, method: str, arguments_: dict[str, Any], failure: str) -> Response:
    svc, name = services(request), request.path_params["name"]
    _read_only(svc)
    args = await arguments(request)
    workername = required(args, "workername")
    if svc.monitor.app.tasks and name not in svc.monitor.app.tasks and "." not in name:
        raise HTTPException(404, f"Unknown task '{name}'")
    _known_worker(svc, workername)
    reply = await run_in_threadpool(
        svc.inspector.command, workername, method, {"task_name": name, **arguments_}
    )
    if reply.succeeded:
        return JSONResponse({"message": reply.ok})
    return PlainTextResponse(f"{failure}: '{reply.error}'", 403)


async def task_timeout(request: Request) -> Response:
    args = await arguments(request)
    limits = {"hard": number(args, "hard", float), "soft": number(args, "soft", float)}
    return await _task_limit(request, "time_limit", limits, "Failed to set timeouts")


async def task_rate_limit(request: Request) -> Response:
    rate = required(await arguments(request), "ratelimit")
    return await _task_limit(request, "rate_limit", {"rate_limit": rate}, "Failed to set rate limit")


# --- monitoring -------------------------------------------------------------------------


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST
    from prometheus_client import generate_latest

    monitor = services(request).monitor
    monitor.metrics.refresh_workers(__import__("time").time())
    return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def healthcheck(request: Request) -> Response:
    return PlainTextResponse("OK")


ROUTES = [
    Route("/api/workers", list_workers),
    Route("/api/worker/shutdown/{name:path}", worker_shutdown, methods=["POST"]),
    Route("/api/worker/pool/restart/{name:path}", pool_restart, methods=["POST"]),
    Route("/api/worker/pool/grow/{name:path}", pool_grow, methods=["POST"]),
    Route("/api/worker/pool/shrink/{name:path}", pool_shrink, methods=["POST"]),
    Route("/api/worker/pool/autoscale/{name:path}", pool_autoscale, methods=["POST"]),
    Route("/api/worker/queue/add-consumer/{name:path}", add_consumer, methods=["POST"]),
    Route("/api/worker/queue/cancel-consumer/{name:path}", cancel_consumer, methods=["POST"]),
    Route("/api/tasks", list_tasks),
    Route("/api/task/types", task_types),
    Route("/api/queues/length", queue_lengths),
    Route("/api/task/info/{task_id:path}", task_info),
    Route("/api/task/apply/{name:path}", task_apply, methods=["POST"]),
    Route("/api/task/async-apply/{name:path}", task_async_apply, methods=["POST"]),
    Route("/api/task/send-task/{name:path}", task_send, methods=["POST"]),
    Route("/api/task/result/{task_id:path}", task_result),
    Route("/api/task/abort/{task_id:path}", task_abort, methods=["POST"]),
    Route("/api/task/timeout/{name:path}", task_timeout, methods=["POST"]),
    Route("/api/task/rate-limit/{name:path}", task_rate_limit, methods=["POST"]),
    Route("/api/task/revoke/{task_id:path}", task_revoke, methods=["POST"]),
    Route("/metrics", metrics),
    Route("/healthcheck", healthcheck),
]
