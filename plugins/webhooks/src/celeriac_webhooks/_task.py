"""The ``celeriac.webhook`` task: a worker requests a URL and stores the response as the result.

Any producer can send it: a Celery protocol 2 message for ``celeriac.webhook`` with no
positional arguments and the keywords ``url``, ``method``, ``json``, ``content``,
``headers``, ``timeout`` and ``max_retries``. In a chain the previous task's result arrives
as the one positional argument (a chain prepends it); it becomes the JSON body when the
call has no body of its own.
"""

from __future__ import annotations

import email.utils
import json as _json
import logging
import time
from collections.abc import Mapping
from typing import Any

from celeriac.plugin import Celeriac
from celeriac.plugin import ResultHandle
from celeriac.plugin import Signature
from celeriac.plugin import Task
from celeriac.plugin import TaskCall
from celeriac.plugin import retry_delay
from celeriac_webhooks._config import SECTION
from celeriac_webhooks._config import WebhooksConfig
from celeriac_webhooks._errors import WebhookConnectionError
from celeriac_webhooks._errors import WebhookHTTPError
from celeriac_webhooks._http import HTTPCall
from celeriac_webhooks._http import request
from celeriac_webhooks._safety import check_url
from celeriac_webhooks._safety import safe_url

TASK_NAME = "celeriac.webhook"
#: Message header carrying a per-call signing secret. A header rather than an argument, so
#: it never shows in ``argsrepr``/``kwargsrepr`` (events, logs, ``inspect``).
SECRET_HEADER = "webhook_secret"
#: Methods whose call never carries the previous chain result as its body.
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
#: Bytes of the response body kept in a WebhookHTTPError (the result keeps up to ``max_body``).
_ERROR_BODY = 65_536
log = logging.getLogger("celeriac.webhooks")


def register(app: Celeriac) -> Task[Any, dict[str, Any]]:
    """Register ``celeriac.webhook`` on ``app`` (idempotent) and return it.

    Workers register it themselves when they start; call this in the module that creates
    the app when a pool runs tasks in processes that import the app afresh (prefork with the
    ``spawn``/``forkserver`` start method), or to run URL tasks eagerly.
    """
    existing = app.tasks.get(TASK_NAME)
    if existing is not None:
        return existing

    def webhook(
        call: TaskCall,
        previous: Any = None,
        *,
        url: str,
        method: str = "POST",
        json: Any = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> dict[str, Any]:
        """Request ``url`` and return the response (``status_code``, ``headers``, ``body`` ...)."""
        return run(
            call,
            url,
            previous,
            method=method,
            json_body=json,
            content=content,
            headers=headers,
            timeout=timeout,
            max_retries=max_retries,
        )

    try:
        task: Task[Any, dict[str, Any]] = app.task(
            name=TASK_NAME, bind=True, retry_backoff=1.0, retry_backoff_max=300.0
        )(webhook)
    except ValueError:  # registered meanwhile by another thread
        return app.tasks[TASK_NAME]
    return task


def run(
    call: TaskCall,
    url: str,
    previous: Any = None,
    *,
    method: str = "POST",
    json_body: Any = None,
    content: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    """The body of the task: one attempt, and the decision to retry, fail or succeed."""
    settings = call.app.config.section(SECTION, WebhooksConfig)
    if not isinstance(url, str) or not isinstance(method, str):
        raise TypeError(f"{TASK_NAME}: url and method must be strings, got {url!r} and {method!r}")
    method = method.upper()
    if json_body is None and content is None and previous is not None and method not in _BODYLESS:
        json_body = previous
    extra = call.request.message.extra_headers if call.request is not None else {}
    secret = extra.get(SECRET_HEADER) or settings.secret
    sent_headers = dict(headers or {})
    if call.request is not None:
        sent_headers.setdefault("X-Celeriac-Task-Id", call.request.id)
    limit = call.task.options.soft_time_limit or call.task.options.time_limit
    if timeout is None and limit:
        timeout = min(settings.timeout, limit)
    http = HTTPCall(
        url=url,
        method=method,
        json_body=json_body,
        has_json=json_body is not None,
        content=content.encode("utf-8") if content is not None else None,
        headers=sent_headers,
        timeout=timeout,
        secret=secret if isinstance(secret, str) else None,
    )
    try:
        response = request(http, settings)
    except WebhookConnectionError as exc:
        raise call.retry(exc=exc, countdown=_backoff(call), max_retries=max_retries) from None
    status = response["status_code"]
    if status < 400:
        return response
    error = WebhookHTTPError(
        f"{method} {safe_url(url)} answered {status} {response['reason']}".rstrip(),
        _json.dumps({**response, "body": response["body"][:_ERROR_BODY]}),
    )
    if status == 429 or status >= 500:
        countdown = _backoff(call)
        after = retry_after(response["headers"].get("retry-after"))
        if after is not None:
            countdown = min(after, call.task.options.retry_backoff_max)
        raise call.retry(exc=error, countdown=countdown, max_retries=max_retries)
    raise error


def _backoff(call: TaskCall) -> float:
    retries = call.request.retries if call.request is not None else 0
    return retry_delay(call.task.options, retries)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _call_kwargs(
    url: str,
    method: str,
    json: Any,
    content: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
    max_retries: int | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"url": url, "method": method.upper()}
    for key, value in (
        ("json", json),
        ("content", content),
        ("headers", dict(headers) if headers else None),
        ("timeout", timeout),
        ("max_retries", max_retries),
    ):
        if value is not None:
            kwargs[key] = value
    if json is not None and content is not None:
        raise ValueError("give json or content, not both")
    return kwargs


def send_url(
    app: Celeriac,
    url: str,
    method: str = "POST",
    *,
    json: Any = None,
    content: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secret: str | None = None,
    max_retries: int | None = None,
    **options: Any,
) -> ResultHandle:
    """Queue an HTTP request for a worker to make; the result is the response.

    :param url: an http or https URL; refused here when ``[webhooks] allowed_hosts`` is set
        and does not list its host.
    :param method: the HTTP method.
    :param json: a JSON body (``None``: none).
    :param content: a text body, sent as UTF-8 (instead of ``json``).
    :param headers: request headers.
    :param timeout: seconds the request may take (default ``[webhooks] timeout``).
    :param secret: signs this request instead of ``[webhooks] secret``; it travels in a
        message header, so prefer the configured secret.
    :param max_retries: retries on connection errors, timeouts, 5xx and 429 (default the
        task's ``max_retries``, 3).
    :param options: ``apply_async`` options: ``countdown``, ``eta``, ``expires``, ``queue``,
        ``priority``, ``task_id``, ``ignore_result`` ...
    :returns: the result handle; its value is the response dict.
    :raises WebhookRefusedError: a URL the safety rules forbid.
    """
    register(app)
    check_url(url, app.config.section(SECTION, WebhooksConfig).allowed_hosts)
    kwargs = _call_kwargs(url, method, json, content, headers, timeout, max_retries)
    message_headers = dict(options.pop("headers", None) or {})
    if secret:
        message_headers[SECRET_HEADER] = secret
    return app.send_task(TASK_NAME, (), kwargs, headers=message_headers or None, **options)


def url_signature(
    app: Celeriac,
    url: str,
    method: str = "POST",
    *,
    json: Any = None,
    content: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secret: str | None = None,
    max_retries: int | None = None,
    immutable: bool = False,
) -> Signature:
    """A signature of a URL task, for chains, groups, chords and callbacks.

    In a chain, the previous result becomes the JSON body of a call that has none (unless
    ``immutable``). Arguments are those of :func:`send_url`.
    """
    register(app)
    check_url(url, app.config.section(SECTION, WebhooksConfig).allowed_hosts)
    options: dict[str, Any] = {"headers": {SECRET_HEADER: secret}} if secret else {}
    return Signature(
        task=TASK_NAME,
        kwargs=_call_kwargs(url, method, json, content, headers, timeout, max_retries),
        options=options,
        immutable=immutable,
        app=app,
    )
