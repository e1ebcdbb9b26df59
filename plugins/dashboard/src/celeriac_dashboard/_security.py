"""Who may read, and who may act: basic auth, bearer tokens, read-only mode, cross-site checks.

An ASGI middleware in front of every route. With ``passwords`` or ``tokens`` set, every
request but ``/healthcheck`` must carry one. In read-only mode every request that changes
something (any method but GET/HEAD/OPTIONS) is refused here, before any route runs, so no
action can forget the check. Such requests must also not come from another site: a bearer token or the page's
CSRF token (header ``X-CSRF-Token``) proves that, and so does the absence of both
``Origin`` and ``Sec-Fetch-Site`` (a script, such as one written for Flower, not a
browser). A browser always sends one of them on a cross-site request, and cannot read
or set the page's token there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Sequence
from typing import final

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response
from starlette.types import ASGIApp
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths open to all: a load balancer's probe carries no credentials.
_OPEN = frozenset({"/healthcheck"})


@final
class Guard:
    """The credentials a request may carry and the page token of this process."""

    def __init__(self, passwords: Sequence[str], tokens: Sequence[str], *, read_only: bool = False) -> None:
        self._passwords = tuple(passwords)
        self._tokens = tuple(tokens)
        self.read_only = read_only
        self.csrf_token = secrets.token_urlsafe(32)

    @property
    def required(self) -> bool:
        return bool(self._passwords or self._tokens)

    def bearer(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(hmac.compare_digest(value, t) for t in self._tokens)

    def basic(self, request: Request) -> str | None:
        """The user name a valid basic-auth header names, else None."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            pair = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        valid = any(hmac.compare_digest(pair, p) for p in self._passwords)
        return pair.partition(":")[0] if valid else None

    def same_site(self, request: Request) -> bool:
        if self.bearer(request):
            return True
        sent = request.headers.get("x-csrf-token", "")
        if sent and hmac.compare_digest(sent, self.csrf_token):
            return True
        return "origin" not in request.headers and "sec-fetch-site" not in request.headers


@final
class GuardMiddleware:
    """Refuses unauthenticated (401), read-only (403) and cross-site (403) requests before any route runs."""

    def __init__(self, app: ASGIApp, guard: Guard, prefix: str) -> None:
        self.app = app
        self.guard = guard
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"].removeprefix(self.prefix)
        refusal = self._refusal(request, path)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request, path: str) -> Response | None:
        if (
            self.guard.required
            and path not in _OPEN
            and not (self.guard.bearer(request) or self.guard.basic(request))
        ):
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="celeriac"'}
            )
        if request.method in SAFE_METHODS:
            return None
        if self.guard.read_only:
            return PlainTextResponse("Read only mode is enabled", status_code=403)
        if not self.guard.same_site(request):
            return PlainTextResponse(
                "cross-site request refused: send the page's X-CSRF-Token header or a bearer token",
                status_code=403,
            )
        return None
