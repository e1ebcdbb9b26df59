"""What every route needs, in one record on ``app.state.services``, plus small request helpers."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.parse
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen
from starlette.exceptions import HTTPException
from starlette.requests import Request

from celeriac_dashboard._query import TaskQuery

if TYPE_CHECKING:
    from celeriac_dashboard._config import DashboardConfig
    from celeriac_dashboard._control import Inspector
    from celeriac_dashboard._monitor import Monitor
    from celeriac_dashboard._security import Guard

#: Flower's format of ``received_start`` and ``received_end``.
RECEIVED_FORMAT = "%Y-%m-%d %H:%M"
_FALSE = frozenset({"", "0", "false", "no", "off"})


@frozen(kw_only=True)
class Services:
    monitor: Monitor
    inspector: Inspector
    guard: Guard
    settings: DashboardConfig


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def arguments(request: Request) -> dict[str, str]:
    """Query and form-encoded body arguments, as Flower's ``get_argument`` reads them."""
    found = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        body = (await request.body()).decode("utf-8", "replace")
        found.update({k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()})
    return found


def flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE


#: The range of each numeric argument, by name: outside it a request is refused with 400
#: (no SQLite overflow, no pool grown by a billion). The OpenAPI document states them too.
BOUNDS: dict[str, tuple[int, int]] = {
    "limit": (0, 100_000),
    "offset": (0, 10**9),
    "n": (1, 1000),
    "min": (0, 1000),
    "max": (0, 1000),
    "timeout": (0, 3600),
    "hard": (0, 7 * 24 * 3600),
    "soft": (0, 7 * 24 * 3600),
    "minutes": (1, 7 * 24 * 60),
}


def number(args: dict[str, str], name: str, kind: type[int] | type[float], default: Any = None) -> Any:
    """The argument ``name`` as a number within :data:`BOUNDS`, or ``default`` when absent."""
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        found = kind(value)
    except ValueError:
        raise HTTPException(400, f"Invalid argument {name}={value!r}: expected a number") from None
    low, high = BOUNDS.get(name, (-math.inf, math.inf))
    if not low <= found <= high:  # NaN too
        raise HTTPException(400, f"Invalid argument {name}={value!r}: expected {low} to {high}")
    return found


def known_worker(svc: Services, name: str) -> None:
    """404, as Flower answers, for a worker neither the events nor inspection have seen."""
    with svc.monitor.lock:
        seen = name in svc.monitor.state.workers
    if not (seen or name in svc.inspector.cached()):
        raise HTTPException(404, f"Unknown worker '{name}'")


def required(args: dict[str, str], name: str) -> str:
    value = args.get(name)
    if not value:
        raise HTTPException(400, f"Missing argument {name}")
    return value


def received_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return time.mktime(dt.datetime.strptime(value, RECEIVED_FORMAT).timetuple())
    except ValueError:
        raise HTTPException(
            400, "Invalid received_start or received_end, expected format 'YYYY-MM-DD HH:MM'"
        ) from None


def task_query(args: dict[str, str], *, default_limit: int | None) -> TaskQuery:
    """Flower's task-list arguments (``All`` means no filter) as a query."""

    def choice(name: str) -> str | None:
        value = args.get(name)
        return None if not value or value == "All" else value

    return TaskQuery(
        state=choice("state"),
        name=choice("taskname"),
        worker=choice("workername"),
        received_start=received_time(args.get("received_start")),
        received_end=received_time(args.get("received_end")),
        search=args.get("search", ""),
        sort_by=args.get("sort_by") or None,
        offset=number(args, "offset", int, 0),
        limit=number(args, "limit", int, default_limit),
    )


def safe_json(value: Any) -> Any:
    """The value if JSON can encode it, else its repr (Flower's ``safe_result``)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
