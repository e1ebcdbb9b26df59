"""One HTTP exchange for a URL task: safety checks, signing, redirects and the body cap.

httpx is imported here only, and only when a request is made, so importing the plugin
(every ``celeriac`` command does) costs nothing.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen

from celeriac_webhooks._errors import WebhookConnectionError
from celeriac_webhooks._errors import WebhookRefusedError
from celeriac_webhooks._safety import check_redirect
from celeriac_webhooks._safety import check_url
from celeriac_webhooks._safety import safe_url
from celeriac_webhooks._signing import SIGNATURE_HEADER
from celeriac_webhooks._signing import sign

if TYPE_CHECKING:
    import httpx

    from celeriac_webhooks._config import WebhooksConfig

USER_AGENT = "celeriac-webhooks"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")


@frozen(kw_only=True)
class HTTPCall:
    """What to request: the arguments of a URL task."""

    url: str
    method: str = "POST"
    json_body: Any = None
    has_json: bool = False
    content: bytes | None = None
    headers: Mapping[str, str] = {}
    timeout: float | None = None
    secret: str | None = None


def request(
    call: HTTPCall, settings: WebhooksConfig, *, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """Make the request and return the response as plain data.

    :returns: ``url`` (after redirects), ``status_code``, ``reason``, ``headers`` (lower-case
        names), ``body`` (text, or base64 when not text), ``body_encoding`` (``"text"`` or
        ``"base64"``), ``truncated`` and ``elapsed`` (seconds).
    :raises WebhookRefusedError: a URL or redirect the safety rules forbid.
    :raises WebhookConnectionError: no response (refused, reset, timed out ...).
    """
    import httpx

    check_url(call.url, settings.allowed_hosts)
    method = call.method.upper()
    headers = {"User-Agent": USER_AGENT, **call.headers}
    if call.has_json:
        body = json.dumps(call.json_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    else:
        body = call.content or b""
    timeout = call.timeout if call.timeout is not None else settings.timeout
    started = time.perf_counter()
    url = call.url
    with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
        outgoing = client.build_request(
            method, url, headers=_signed(headers, body, call.secret), content=body or None
        )
        try:
            for _ in range(settings.max_redirects + 1):
                response = client.send(outgoing, stream=True)
                target = response.next_request if settings.follow_redirects else None
                if target is None:
                    return _result(response, settings.max_body, time.perf_counter() - started)
                response.close()
                check_redirect(str(outgoing.url), str(target.url), settings.allowed_hosts)
                # httpx turns a 303 (and a POST answered with 301/302) into a body-less GET:
                # sign what is actually sent.
                content = target.read()
                outgoing = client.build_request(
                    target.method,
                    target.url,
                    headers=_signed(dict(target.headers), content, call.secret),
                    content=content or None,
                )
            raise WebhookRefusedError(
                f"{method} {safe_url(call.url)}: more than {settings.max_redirects} redirects"
            )
        except httpx.TimeoutException as exc:
            raise WebhookConnectionError(
                f"{method} {safe_url(call.url)} timed out after {timeout:g} s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise WebhookConnectionError(
                f"{method} {safe_url(call.url)} failed: {type(exc).__name__}: {exc}"
            ) from None


def _signed(headers: dict[str, str], body: bytes, secret: str | None) -> dict[str, str]:
    headers = {k: v for k, v in headers.items() if k.lower() != SIGNATURE_HEADER.lower()}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return headers


def _result(response: httpx.Response, max_body: int, elapsed: float) -> dict[str, Any]:
    try:
        data, truncated = _read_capped(response, max_body)
    finally:
        response.close()
    content_type = response.headers.get("content-type", "").lower()
    body: str
    encoding = "base64"
    if not content_type or any(kind in content_type for kind in _TEXT_TYPES):
        try:
            body, encoding = data.decode(response.encoding or "utf-8"), "text"
        except (UnicodeDecodeError, LookupError):
            body = base64.b64encode(data).decode("ascii")
    else:
        body = base64.b64encode(data).decode("ascii")
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return {
        "url": str(response.url),
        "status_code": response.status_code,
        "reason": response.reason_phrase,
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
        "truncated": truncated,
        "elapsed": round(elapsed, 6),
    }


def _read_capped(response: httpx.Response, max_body: int) -> tuple[bytes, bool]:
    """At most ``max_body`` bytes; the rest is neither read into memory nor kept."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            return b"".join(chunks)[:max_body], True
    return b"".join(chunks), False
