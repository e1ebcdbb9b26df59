"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``.

Written out here rather than derived: the Flower-compatible paths take their arguments
from the query or a form body as Flower does, which no schema generator infers.
"""

from __future__ import annotations

from typing import Any

from celeriac_dashboard._query import SORT_KEYS
from celeriac_dashboard._services import BOUNDS

_Q = "query"
_P = "path"

# (method, path, tag, summary, [(name, where, type, required)], request body JSON?)
_OPERATIONS: list[tuple[str, str, str, str, list[tuple[str, str, str, bool]], bool]] = [
    ("get", "/api/workers", "flower", "Workers' inspect replies, by name; status=true: alive or not",
     [("refresh", _Q, "boolean", False), ("status", _Q, "boolean", False), ("workername", _Q, "string", False)], False),
    ("post", "/api/worker/shutdown/{name}", "flower", "Shut a worker down (warm)", [("name", _P, "string", True)], False),
    ("post", "/api/worker/pool/restart/{name}", "flower", "Restart a worker's pool", [("name", _P, "string", True)], False),
    ("post", "/api/worker/pool/grow/{name}", "flower", "Grow a worker's pool by n",
     [("name", _P, "string", True), ("n", _Q, "integer", False)], False),
    ("post", "/api/worker/pool/shrink/{name}", "flower", "Shrink a worker's pool by n",
     [("name", _P, "string", True), ("n", _Q, "integer", False)], False),
    ("post", "/api/worker/pool/autoscale/{name}", "flower", "Set a worker's autoscale bounds",
     [("name", _P, "string", True), ("min", _Q, "integer", True), ("max", _Q, "integer", True)], False),
    ("post", "/api/worker/queue/add-consumer/{name}", "flower", "Make a worker consume a queue",
     [("name", _P, "string", True), ("queue", _Q, "string", True)], False),
    ("post", "/api/worker/queue/cancel-consumer/{name}", "flower", "Make a worker stop consuming a queue",
     [("name", _P, "string", True), ("queue", _Q, "string", True)], False),
    ("get", "/api/tasks", "flower", "Tasks, by id (Flower's fields)",
     [("limit", _Q, "integer", False), ("offset", _Q, "integer", False), ("workername", _Q, "string", False),
      ("taskname", _Q, "string", False), ("state", _Q, "string", False), ("received_start", _Q, "string", False),
      ("received_end", _Q, "string", False), ("sort_by", _Q, "string", False), ("search", _Q, "string", False)], False),
    ("get", "/api/task/types", "flower", "Task names seen", [], False),
    ("get", "/api/queues/length", "flower", "Messages waiting per known queue", [], False),
    ("get", "/api/task/info/{task_id}", "flower", "One task (Flower's fields)", [("task_id", _P, "string", True)], False),
    ("post", "/api/task/apply/{name}", "flower", "Send a task and wait for its result",
     [("name", _P, "string", True)], True),
    ("post", "/api/task/async-apply/{name}", "flower", "Send a registered task", [("name", _P, "string", True)], True),
    ("post", "/api/task/send-task/{name}", "flower", "Send a task by name", [("name", _P, "string", True)], True),
    ("get", "/api/task/result/{task_id}", "flower", "A task's state and result",
     [("task_id", _P, "string", True), ("timeout", _Q, "number", False)], False),
    ("post", "/api/task/abort/{task_id}", "flower", "Abort a running abortable task", [("task_id", _P, "string", True)], False),
    ("post", "/api/task/timeout/{name}", "flower", "Set a task's time limits on a worker",
     [("name", _P, "string", True), ("workername", _Q, "string", True), ("hard", _Q, "number", False),
      ("soft", _Q, "number", False)], False),
    ("post", "/api/task/rate-limit/{name}", "flower", "Set a task's rate limit on a worker",
     [("name", _P, "string", True), ("workername", _Q, "string", True), ("ratelimit", _Q, "string", True)], False),
    ("post", "/api/task/revoke/{task_id}", "flower", "Revoke a task (terminate: also stop it if running)",
     [("task_id", _P, "string", True), ("terminate", _Q, "boolean", False), ("signal", _Q, "string", False)], False),
    ("get", "/metrics", "flower", "Prometheus metrics", [], False),
    ("get", "/healthcheck", "flower", "OK when the dashboard runs (no authentication)", [], False),
    ("get", "/api/dashboard/workers", "dashboard", "Workers as their events describe them", [], False),
    ("get", "/api/dashboard/tasks", "dashboard", "A page of tasks with the total count",
     [("limit", _Q, "integer", False), ("offset", _Q, "integer", False), ("state", _Q, "string", False),
      ("taskname", _Q, "string", False), ("workername", _Q, "string", False), ("search", _Q, "string", False)], False),
    ("get", "/api/dashboard/task/{task_id}", "dashboard", "A task with its timeline and workflow",
     [("task_id", _P, "string", True)], False),
    ("get", "/api/dashboard/queues", "dashboard", "Queues: messages, consumers, net change per minute", [], False),
    ("get", "/api/dashboard/dead-letters", "dashboard", "Dead letters with their reasons",
     [("queue", _Q, "string", False), ("limit", _Q, "integer", False)], False),
    ("post", "/api/dashboard/dead-letters/{letter_id}/requeue", "dashboard", "Put a dead letter back on its queue",
     [("letter_id", _P, "string", True)], False),
    ("post", "/api/dashboard/dead-letters/purge", "dashboard", "Delete dead letters (of one queue)",
     [("queue", _Q, "string", False)], False),
    ("get", "/api/dashboard/schedule", "dashboard", "Beat entries with last and next run", [], False),
    ("put", "/api/dashboard/schedule/{name}", "dashboard", "Store a beat entry (its TOML table as JSON)",
     [("name", _P, "string", True)], True),
    ("delete", "/api/dashboard/schedule/{name}", "dashboard", "Remove a stored beat entry", [("name", _P, "string", True)], False),
    ("get", "/api/dashboard/graphs", "dashboard", "Throughput, runtime percentiles, queue lengths over time",
     [("minutes", _Q, "integer", False)], False),
    ("get", "/live", "dashboard", "Server-sent events: what changed, for open pages", [], False),
    ("get", "/openapi.json", "dashboard", "This document", [], False),
]  # fmt: skip

#: What a 200 carries, where it is not a JSON object.
_CONTENT = {"/healthcheck": "text/plain", "/metrics": "text/plain", "/live": "text/event-stream"}
#: Operations that need the result store (503 without one) or the workers' replies.
_UNAVAILABLE = frozenset({"/api/task/result/{task_id}", "/api/task/abort/{task_id}", "/api/workers"})
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
#: Arguments whose values are narrower than their type.
_NARROWER: dict[str, dict[str, Any]] = {
    "sort_by": {"enum": sorted(f"{sign}{key}" for key in SORT_KEYS for sign in ("", "-"))},
    "received_start": {"pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"},
    "received_end": {"pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"},
}


def openapi(prefix: str) -> dict[str, Any]:
    """The document, its server under ``prefix``; every status an operation answers is listed."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, tag, summary, parameters, body in _OPERATIONS:
        operation: dict[str, Any] = {
            "tags": [tag],
            "summary": summary,
            "parameters": [
                {
                    "name": name,
                    "in": where,
                    "required": needed,
                    "schema": {"type": kind, **_NARROWER.get(name, {}), **_bounds(name)},
                }
                for name, where, kind, needed in parameters
            ],
            "responses": _responses(method, path, parameters, body),
        }
        if body:
            operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "celeriac dashboard", "version": "1"},
        "servers": [{"url": prefix or "/"}],
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
        },
        "security": [{"basic": []}, {"bearer": []}, {}],
        "paths": paths,
    }


def _bounds(name: str) -> dict[str, int]:
    if name not in BOUNDS:
        return {}
    low, high = BOUNDS[name]
    return {"minimum": low, "maximum": high}


def _responses(
    method: str, path: str, parameters: list[tuple[str, str, str, bool]], body: bool
) -> dict[str, Any]:
    kind = _CONTENT.get(path, "application/json")
    ok = {"schema": {"type": "string"}} if kind != "application/json" else {"schema": {"type": "object"}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {kind: ok}},
        "401": {"description": "credentials required", "content": _TEXT},
    }
    if body or any(where == _Q for _, where, _, _ in parameters):
        responses["400"] = {"description": "a bad argument, named", "content": _TEXT}
    if method != "get":
        responses["403"] = {
            "description": "read-only mode, a cross-site request, or refused by the worker",
            "content": _TEXT,
        }
    if path == "/api/workers" or any(where == _P for _, where, _, _ in parameters):
        responses["404"] = {"description": "unknown worker, task or entry", "content": _TEXT}
    if path == "/api/dashboard/dead-letters/purge":
        responses["501"] = {"description": "the transport cannot purge dead letters", "content": _TEXT}
    if path in _UNAVAILABLE:
        responses["503"] = {"description": "no result store, or the workers did not answer", "content": _TEXT}
    return responses
