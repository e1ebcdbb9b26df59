"""The ASGI application: Starlette routes under the URL prefix, behind the guard."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2 import FileSystemLoader
from jinja2 import select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from celeriac_dashboard._flower import ROUTES as FLOWER_ROUTES
from celeriac_dashboard._routes import ROUTES as PAGE_ROUTES
from celeriac_dashboard._security import GuardMiddleware
from celeriac_dashboard._services import Services

_HERE = Path(__file__).parent


def _clock(value: Any) -> str:
    if not value:
        return "-"
    return dt.datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}s"


def templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["clock"] = _clock
    env.filters["seconds"] = _seconds
    env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, default=str, sort_keys=True)
    return Jinja2Templates(env=env)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


def make_app(svc: Services) -> Starlette:
    """The dashboard for ``svc``; its monitor's threads are started and stopped with the app."""
    prefix = svc.settings.url_prefix

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        svc.monitor.hub.attach(asyncio.get_running_loop())
        yield

    inner = Starlette(
        routes=[
            *PAGE_ROUTES,
            *FLOWER_ROUTES,
            Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    inner.state.services = svc
    inner.state.prefix = prefix
    inner.state.templates = templates()
    routes = [Mount(prefix, app=inner)] if prefix else inner.routes
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=svc.guard, prefix=prefix)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.prefix = prefix
    app.state.templates = inner.state.templates
    return app
