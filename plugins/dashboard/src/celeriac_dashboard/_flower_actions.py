"""Flower's task actions: send (apply, async-apply, send-task), abort, revoke, time and rate limits.

Read-only mode and cross-site requests are refused before any of these runs (``_security``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.responses import Response

from celeriac.plugin import TimeoutError as ResultTimeout
from celeriac_dashboard._flower_tasks import outcome
from celeriac_dashboard._services import Services
from celeriac_dashboard._services import arguments
from celeriac_dashboard._services import flag
from celeriac_dashboard._services import known_worker
from celeriac_dashboard._services import number
from celeriac_dashboard._services import required
from celeriac_dashboard._services import services

#: Flower's format of ``eta`` and ``expires`` in apply requests.
DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


async def _task_arguments(request: Request) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """``args``, ``kwargs`` and the other options of an apply request's JSON body."""
    body = await request.body()
    try:
        options = json.loads(body) if body else {}
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


async def task_apply(request: Request) -> Response:
    svc, name = services(request), request.path_params["name"]
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
        response.update(outcome(result))
        response.update(_state_of(svc, result))
        return response

    return JSONResponse(await run_in_threadpool(run))


async def task_async_apply(request: Request, *, by_name: bool = False) -> Response:
    svc, name = services(request), request.path_params["name"]
    args, kwargs, options = await _task_arguments(request)
    if not by_name and name not in svc.monitor.app.tasks:
        raise HTTPException(404, f"Unknown task '{name}'")

    def run() -> dict[str, Any]:
        result = _publish(svc, name, args, kwargs, options, by_name=by_name)
        return {"task-id": result.id, **_state_of(svc, result)}

    return JSONResponse(await run_in_threadpool(run))


async def task_send(request: Request) -> Response:
    return await task_async_apply(request, by_name=True)


async def task_abort(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    app = svc.monitor.app
    if app.result_store_url is None:
        raise HTTPException(503)
    # Celery's AbortableTask protocol: the ABORTED state in the result store, which the
    # task polls with is_aborted().
    await run_in_threadpool(lambda: app.result_store.store(app.results.encode(task_id, "ABORTED", None)))
    return JSONResponse({"message": f"Aborted '{task_id}'"})


async def task_revoke(request: Request) -> Response:
    svc, task_id = services(request), request.path_params["task_id"]
    args = await arguments(request)
    terminate, signal = flag(args.get("terminate")), args.get("signal") or "SIGTERM"
    await run_in_threadpool(
        lambda: svc.monitor.app.control.revoke(task_id, terminate=terminate, signal=signal)
    )
    return JSONResponse({"message": f"Revoked '{task_id}'"})


async def _task_limit(request: Request, method: str, arguments_: dict[str, Any], failure: str) -> Response:
    svc, name = services(request), request.path_params["name"]
    args = await arguments(request)
    workername = required(args, "workername")
    if svc.monitor.app.tasks and name not in svc.monitor.app.tasks and "." not in name:
        raise HTTPException(404, f"Unknown task '{name}'")
    known_worker(svc, workername)
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
