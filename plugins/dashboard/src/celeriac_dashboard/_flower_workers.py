"""Flower's worker endpoints: the inspect cache (``/api/workers``) and the pool and consumer controls.

Each control is one remote-control command to one worker, answered as Flower answers it:
200 with Flower's message, 403 with the worker's reason, 404 for a worker never seen.
Read-only mode and cross-site requests are refused before any of these runs (``_security``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.responses import Response

from celeriac_dashboard._services import arguments
from celeriac_dashboard._services import flag
from celeriac_dashboard._services import known_worker
from celeriac_dashboard._services import number
from celeriac_dashboard._services import required
from celeriac_dashboard._services import services

#: Flower's message when a worker refuses a command, by command.
_FAILURES = {
    "pool_restart": "Failed to restart the '{name}' pool",
    "pool_grow": "Failed to grow '{name}' worker's pool",
    "pool_shrink": "Failed to shrink '{name}' worker's pool",
    "autoscale": "Failed to autoscale '{name}' worker",
    "add_consumer": "Failed to add '{queue}' consumer to '{name}' worker",
    "cancel_consumer": "Failed to cancel '{queue}' consumer from '{name}' worker",
}


async def list_workers(request: Request) -> Response:
    svc, args = services(request), await arguments(request)
    workername = args.get("workername")
    if flag(args.get("refresh")):
        try:
            await run_in_threadpool(svc.inspector.refresh, workername)
        except Exception as exc:
            raise HTTPException(503, f"Failed to update workers: {exc}") from exc
    if flag(args.get("status")):
        now = time.time()
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
    name = request.path_params["name"]
    known_worker(svc, name)
    reply = await run_in_threadpool(svc.inspector.command, name, method, arguments_)
    if reply.succeeded:
        return JSONResponse({"message": success.format(ok=reply.ok)})
    return PlainTextResponse(f"{_FAILURES[method].format(name=name, **arguments_)}: {reply.error}", 403)


async def worker_shutdown(request: Request) -> Response:
    svc = services(request)
    name = request.path_params["name"]
    known_worker(svc, name)
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
    response = await _control(request, "add_consumer", {"queue": queue}, "{ok}")
    if response.status_code == 200:
        services(request).monitor.watch_queue(queue)  # its length is sampled from now on
    return response


async def cancel_consumer(request: Request) -> Response:
    queue = required(await arguments(request), "queue")
    return await _control(request, "cancel_consumer", {"queue": queue}, "{ok}")
