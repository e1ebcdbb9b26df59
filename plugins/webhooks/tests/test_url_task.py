"""URL tasks on a real worker against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from celeriac import Celeriac
from celeriac import MaxRetriesExceededError
from celeriac import chain
from celeriac import states
from celeriac.testing import join
from celeriac.testing import worker_thread
from celeriac_webhooks import TASK_NAME
from celeriac_webhooks import WebhookHTTPError
from celeriac_webhooks import WebhookRefusedError
from celeriac_webhooks import retry_after
from celeriac_webhooks import send_url
from celeriac_webhooks import url_signature

if TYPE_CHECKING:
    from conftest import Server

JSON = {"Content-Type": "application/json"}


def test_every_app_has_the_task(app: Celeriac) -> None:
    assert TASK_NAME in app.tasks  # registered as the app was built (celeriac_app_configured)


def test_success_stores_status_headers_and_body(worker: Celeriac, server: Server) -> None:
    url = server.route("/ok", server.reply(body=b'{"hello": "world"}', headers={**JSON, "X-Answer": "42"}))
    handle = send_url(worker, url, json={"n": 1}, headers={"X-Trace": "abc"})
    result = handle.get(timeout=10)
    assert result["status_code"] == 200
    assert result["headers"]["x-answer"] == "42"
    assert json.loads(result["body"]) == {"hello": "world"}
    assert result["body_encoding"] == "text"
    assert result["truncated"] is False
    (received,) = server.requests_to("/ok")
    assert received.method == "POST"
    assert json.loads(received.body) == {"n": 1}
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-trace"] == "abc"
    assert received.headers["x-celeriac-task-id"] == handle.id


def test_get_with_no_body(worker: Celeriac, server: Server) -> None:
    url = server.route("/get", server.reply(body=b"plain"))
    assert send_url(worker, url, "GET").get(timeout=10)["body"] == "plain"
    assert server.requests_to("/get")[0].method == "GET"


def test_5xx_is_retried_then_succeeds(worker: Celeriac, server: Server) -> None:
    url = server.route(
        "/flaky", server.reply(status=500), server.reply(status=503), server.reply(body=b"done")
    )
    result = send_url(worker, url, json={}).get(timeout=10)
    assert result["status_code"] == 200
    assert result["body"] == "done"
    assert len(server.requests_to("/flaky")) == 3


def test_429_waits_as_long_as_retry_after_says(worker: Celeriac, server: Server) -> None:
    url = server.route(
        "/limited", server.reply(status=429, headers={"Retry-After": "1"}), server.reply(body=b"now")
    )
    assert send_url(worker, url, json={}).get(timeout=10)["body"] == "now"
    first, second = server.requests_to("/limited")
    assert second.at - first.at >= 0.9  # the configured back-off is 0.05 s


def test_4xx_fails_at_once_with_the_response(app: Celeriac, server: Server) -> None:
    url = server.route("/missing", server.reply(status=404, body=b'{"error": "nope"}', headers=JSON))
    with worker_thread(app, concurrency=4) as worker:
        handle = send_url(app, url, json={})
        with pytest.raises(WebhookHTTPError) as caught:
            handle.get(timeout=10)
        join(worker)  # a retry would be a message of its own, run before this returns
    assert "404" in str(caught.value)
    assert caught.value.status_code == 404
    assert json.loads(caught.value.response["body"]) == {"error": "nope"}
    assert len(server.requests_to("/missing")) == 1
    assert handle.state == states.FAILURE


def test_connection_refused_is_retried_then_fails(worker: Celeriac, free_port: int) -> None:
    started = time.monotonic()
    handle = send_url(worker, f"http://127.0.0.1:{free_port}/", json={}, max_retries=2)
    with pytest.raises(MaxRetriesExceededError) as caught:
        handle.get(timeout=10)
    message = str(caught.value)
    assert "gave up after 2 retries" in message
    assert "ConnectError" in message
    assert time.monotonic() - started >= 0.15  # 0.05 + 0.1 of back-off


def test_timeout(worker: Celeriac, server: Server) -> None:
    url = server.route("/slow", server.reply(delay=1.5))
    handle = send_url(worker, url, json={}, timeout=0.2, max_retries=0)
    with pytest.raises(MaxRetriesExceededError, match=r"timed out after 0\.2 s"):
        handle.get(timeout=10)


def test_a_chain_of_url_tasks_passes_the_response_on(worker: Celeriac, server: Server) -> None:
    first = server.route("/first", server.reply(body=b'{"step": 1}', headers=JSON))
    second = server.route("/second", server.reply(body=b"second"))
    third = server.route("/third", server.reply(body=b"third"))
    flow = chain(
        url_signature(worker, first, json={"start": True}),
        url_signature(worker, second),
        url_signature(worker, third, "GET"),
    )
    assert flow.apply_async().get(timeout=10)["body"] == "third"
    forwarded = json.loads(server.requests_to("/second")[0].body)
    assert forwarded["status_code"] == 200
    assert json.loads(forwarded["body"]) == {"step": 1}
    assert server.requests_to("/third")[0].body == b""


def test_routing_and_task_options_apply(server: Server, make_app: Callable[..., Celeriac]) -> None:
    app = make_app(
        task_routes={"celeriac.webhook": "http"},
        tasks={"celeriac.webhook": {"rate_limit": "5/s", "retry_backoff": 0.05}},
    )
    url = server.route("/routed", server.reply())
    handle = send_url(app, url, json={})
    assert app.transport.queue_length("http") == 1
    with worker_thread(app, queues=("http",)):
        assert handle.get(timeout=10)["status_code"] == 200
    assert app.tasks[TASK_NAME].options.rate_limit == "5/s"


def test_body_is_capped(server: Server, make_app: Callable[..., Celeriac]) -> None:
    app = make_app(webhooks={"max_body": 1000})
    url = server.route("/big", server.reply(body=b"x" * 5000))
    binary = server.route(
        "/binary", server.reply(body=bytes(range(256)) * 20, headers={"Content-Type": "image/png"})
    )
    with worker_thread(app):
        big = send_url(app, url, "GET").get(timeout=10)
        raw = send_url(app, binary, "GET").get(timeout=10)
    assert big["body"] == "x" * 1000
    assert big["truncated"] is True
    assert raw["body_encoding"] == "base64"
    assert base64.b64decode(raw["body"]) == (bytes(range(256)) * 4)[:1000]


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "127.0.0.1:80/x", "http:///nohost"]
)
def test_other_schemes_are_refused_when_sending(app: Celeriac, url: str) -> None:
    with pytest.raises(WebhookRefusedError):
        send_url(app, url)
    with pytest.raises(WebhookRefusedError):
        url_signature(app, url)
    assert app.transport.queue_length("celery") == 0


def test_hosts_outside_the_allow_list_are_refused_when_sending(make_app: Callable[..., Celeriac]) -> None:
    app = make_app(webhooks={"allowed_hosts": ["hooks.example.com", "*.example.org"]})
    with pytest.raises(WebhookRefusedError, match="not in \\[webhooks\\] allowed_hosts"):
        send_url(app, "http://127.0.0.1:9/")
    send_url(app, "https://hooks.example.com/x")  # only queued: no worker runs here
    send_url(app, "https://a.b.example.org/x")
    assert app.transport.queue_length("celery") == 2


def test_redirects_to_the_same_host_are_followed(worker: Celeriac, server: Server) -> None:
    url = server.route("/old", server.reply(status=307, headers={"Location": "/new"}))
    server.route("/new", server.reply(body=b"moved"))
    result = send_url(worker, url, json={"keep": 1}).get(timeout=10)
    assert result["body"] == "moved"
    assert result["url"].endswith("/new")
    assert json.loads(server.requests_to("/new")[0].body) == {"keep": 1}


def test_redirects_to_another_host_are_refused(
    worker: Celeriac, server: Server, other_server: Server
) -> None:
    target = other_server.url("/steal")  # another origin (port): it must never be asked anything
    url = server.route("/away", server.reply(status=302, headers={"Location": target}))
    with pytest.raises(WebhookRefusedError, match="refused redirect"):
        send_url(worker, url, json={}).get(timeout=10)
    assert other_server.received == []


def test_retry_after_parsing() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
