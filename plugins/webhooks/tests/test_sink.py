"""The webhook event sink: batches to a real server; a dead endpoint disables it, never the worker."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from celeriac import Celeriac
from celeriac.testing import worker_thread
from celeriac_webhooks import SinkConfig
from celeriac_webhooks import WebhookRefusedError
from celeriac_webhooks import WebhookSink
from celeriac_webhooks import make_sinks
from celeriac_webhooks import verify
from celeriac_webhooks._config import WebhooksConfig

if TYPE_CHECKING:
    from conftest import Server


def _events(server: Server, path: str) -> list[dict[str, object]]:
    return [event for r in server.requests_to(path) for event in json.loads(r.body)["events"]]


def test_worker_posts_selected_events_in_signed_batches(
    server: Server, make_app: Callable[..., Celeriac]
) -> None:
    url = server.route("/events", server.reply())
    app = make_app(
        webhooks={
            "secret": "sink-secret",
            "sinks": {"ops": {"url": url, "events": ["task-succeeded", "task-failed"], "interval": 0.05}},
        }
    )

    @app.task(name="t.ok")
    def ok() -> int:
        return 1

    @app.task(name="t.bad")
    def bad() -> None:
        raise ValueError("boom")

    with worker_thread(app, send_events=True):
        ok.delay().get(timeout=10)
        bad.delay()
        server.wait_for(
            lambda: {"task-succeeded", "task-failed"} <= {e["type"] for e in _events(server, "/events")}
        )
    types = [e["type"] for e in _events(server, "/events")]
    assert set(types) == {"task-succeeded", "task-failed"}  # task-received, worker-online ... filtered out
    for received in server.requests_to("/events"):
        verify("sink-secret", received.headers["x-celeriac-signature"], received.body)
        assert json.loads(received.body)["sink"] == "ops"


def test_batches_are_bounded_by_batch_size(server: Server) -> None:
    url = server.route("/batches", server.reply())
    sink = WebhookSink("b", SinkConfig(url=url, batch_size=10, interval=0.05))
    for number in range(35):
        sink.send({"type": "task-succeeded", "n": number})
    server.wait_for(lambda: len(_events(server, "/batches")) == 35)
    sink.close()
    sizes = [len(json.loads(r.body)["events"]) for r in server.requests_to("/batches")]
    assert max(sizes) <= 10
    assert [e["n"] for e in _events(server, "/batches")] == list(range(35))


def test_a_failing_sink_retries_then_disables_itself(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/down", server.reply(status=500))
    settings = SinkConfig(
        url=url, interval=0.02, retries=1, backoff=0.01, max_failures=2, secret="hidden-key"
    )
    sink = WebhookSink("flaky", settings, secret=settings.secret)
    with caplog.at_level(logging.WARNING, logger="celeriac.webhooks"):
        for _ in range(2):
            sink.send({"type": "task-failed"})
            deadline = time.monotonic() + 5
            while sink.pending() and time.monotonic() < deadline:
                time.sleep(0.01)
        server.wait_for(lambda: sink.disabled)
        sink.send({"type": "task-failed"})  # dropped at once now
        sink.close()
    assert len(server.requests_to("/down")) == 4  # two batches, each tried twice
    assert sink.pending() == 0
    disabled = [r for r in caplog.records if " disabled:" in r.getMessage()]
    assert len(disabled) == 1
    assert disabled[0].levelno == logging.ERROR
    assert "'flaky' disabled: 2 batches in a row" in disabled[0].getMessage()
    assert "hidden-key" not in caplog.text


def test_a_dead_sink_costs_the_hot_path_nothing(free_port: int) -> None:
    sink = WebhookSink(
        "dead",
        SinkConfig(
            url=f"http://127.0.0.1:{free_port}/", interval=0.01, retries=5, backoff=1.0, max_buffer=1000
        ),
    )
    event = {"type": "task-succeeded", "uuid": "x"}
    started = time.perf_counter()
    for _ in range(50_000):
        sink.send(event)
    elapsed = time.perf_counter() - started
    assert sink.pending() <= 1000  # bounded memory while the endpoint is down
    close_started = time.monotonic()
    sink.close()  # the back-off is interrupted: closing is quick
    assert time.monotonic() - close_started < 3
    assert elapsed < 1.0, f"50,000 sends took {elapsed:.2f} s"


def test_unselected_events_are_ignored_cheaply(free_port: int) -> None:
    sink = WebhookSink("sel", SinkConfig(url=f"http://127.0.0.1:{free_port}/", events=("task-failed",)))
    sink.send({"type": "task-succeeded"})
    assert sink.pending() == 0
    sink.close()


def test_sink_urls_are_checked_at_start() -> None:
    with pytest.raises(WebhookRefusedError):
        make_sinks(WebhooksConfig(sinks={"x": SinkConfig(url="ftp://127.0.0.1/")}))
    with pytest.raises(WebhookRefusedError):
        make_sinks(
            WebhooksConfig(
                allowed_hosts=("hooks.example.com",), sinks={"x": SinkConfig(url="http://127.0.0.1/")}
            )
        )


def test_sinks_from_toml_keys(make_app: Callable[..., Celeriac]) -> None:
    app = make_app(webhooks={"sinks": {"a": {"url": "http://127.0.0.1:9/", "events": ["task-failed"]}}})
    (sink,) = make_sinks(app.config.section("webhooks", WebhooksConfig))
    assert sink.settings.events == ("task-failed",)
    assert "secret" not in repr(sink)
