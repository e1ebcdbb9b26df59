"""Flower's HTTP API: the same paths, arguments, JSON shapes, status codes and messages.

Scripts written against Flower 2.2 work unchanged. Where Flower reads Celery's in-memory
state, these read the dashboard's (events, folded, and the history); where Flower calls
``app.control``, these call celeriac's, which reaches Celery and celeriac workers alike.
The endpoints live by concern: workers and their controls (``_flower_workers``), reading
tasks (``_flower_tasks``), acting on tasks (``_flower_actions``); this module holds the
route table and the two monitoring endpoints.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response
from starlette.routing import Route

from celeriac_dashboard import _flower_actions as actions
from celeriac_dashboard import _flower_tasks as tasks
from celeriac_dashboard import _flower_workers as workers
from celeriac_dashboard._services import services


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST
    from prometheus_client import generate_latest

    monitor = services(request).monitor
    monitor.metrics.refresh_workers(time.time())
    return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def healthcheck(request: Request) -> Response:
    return PlainTextResponse("OK")


ROUTES = [
    Route("/api/workers", workers.list_workers),
    Route("/api/worker/shutdown/{name:path}", workers.worker_shutdown, methods=["POST"]),
    Route("/api/worker/pool/restart/{name:path}", workers.pool_restart, methods=["POST"]),
    Route("/api/worker/pool/grow/{name:path}", workers.pool_grow, methods=["POST"]),
    Route("/api/worker/pool/shrink/{name:path}", workers.pool_shrink, methods=["POST"]),
    Route("/api/worker/pool/autoscale/{name:path}", workers.pool_autoscale, methods=["POST"]),
    Route("/api/worker/queue/add-consumer/{name:path}", workers.add_consumer, methods=["POST"]),
    Route("/api/worker/queue/cancel-consumer/{name:path}", workers.cancel_consumer, methods=["POST"]),
    Route("/api/tasks", tasks.list_tasks),
    Route("/api/task/types", tasks.task_types),
    Route("/api/queues/length", tasks.queue_lengths),
    Route("/api/task/info/{task_id:path}", tasks.task_info),
    Route("/api/task/apply/{name:path}", actions.task_apply, methods=["POST"]),
    Route("/api/task/async-apply/{name:path}", actions.task_async_apply, methods=["POST"]),
    Route("/api/task/send-task/{name:path}", actions.task_send, methods=["POST"]),
    Route("/api/task/result/{task_id:path}", tasks.task_result),
    Route("/api/task/abort/{task_id:path}", actions.task_abort, methods=["POST"]),
    Route("/api/task/timeout/{name:path}", actions.task_timeout, methods=["POST"]),
    Route("/api/task/rate-limit/{name:path}", actions.task_rate_limit, methods=["POST"]),
    Route("/api/task/revoke/{task_id:path}", actions.task_revoke, methods=["POST"]),
    Route("/metrics", metrics),
    Route("/healthcheck", healthcheck),
]
