"""Spans across a chain run by a real worker, read from the SDK's in-memory exporter.

The tracer provider is passed to nothing: the plugin reads the global one, as an operator's
setup (opentelemetry-instrument, or code at start) would set it (``exporter`` in conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import celeriac.plugin
import celeriac.testing
import celeriac_opentelemetry
from celeriac import Celeriac
from celeriac import chain
from celeriac.testing import wait_for
from celeriac.testing import worker_thread


@pytest.fixture
def app(exporter: InMemorySpanExporter) -> Iterator[Celeriac]:
    exporter.clear()
    made = Celeriac("traced", broker="memory://", plugins=[celeriac.testing], env={}, config=False)
    yield made
    made.close()


def test_a_chain_is_one_trace_publish_run_publish(app: Celeriac, exporter: InMemorySpanExporter) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app, concurrency=2):
        result = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
        assert result.get(timeout=10) == 10
        spans = wait_for(lambda: (s := exporter.get_finished_spans()) and len(s) >= 6 and s)
    names = [span.name for span in spans]
    assert names.count(f"apply_async/{add.name}") == 3, names
    assert names.count(f"run/{add.name}") == 3, names
    assert len({span.context.trace_id for span in spans}) == 1
    by_id = {span.context.span_id: span for span in spans}
    publishes = [s for s in spans if s.kind == SpanKind.PRODUCER]
    runs = [s for s in spans if s.kind == SpanKind.CONSUMER]
    # Every run's parent is the publish of its message; every later publish is inside a run.
    for run in runs:
        parent = by_id[run.parent.span_id]
        assert parent.kind == SpanKind.PRODUCER
        assert parent.attributes["messaging.message.id"] == run.attributes["messaging.message.id"]
        assert run.attributes["celery.state"] == "SUCCESS"
    first = [p for p in publishes if p.parent is None]
    assert len(first) == 1
    assert all(by_id[p.parent.span_id].kind == SpanKind.CONSUMER for p in publishes if p.parent is not None)


def test_a_failure_is_recorded_on_its_run_span(app: Celeriac, exporter: InMemorySpanExporter) -> None:
    @app.task
    def broken() -> None:
        raise ValueError("broken on purpose")

    with worker_thread(app, concurrency=1):
        broken.delay().get(timeout=10, propagate=False)
        spans = wait_for(lambda: [s for s in exporter.get_finished_spans() if s.name.startswith("run/")])
    (run,) = spans
    assert run.status.status_code.name == "ERROR"
    assert run.attributes["celery.state"] == "FAILURE"
    assert any(event.name == "exception" for event in run.events)


def test_the_headers_carry_a_w3c_traceparent(app: Celeriac, exporter: InMemorySpanExporter) -> None:
    sent: list[Any] = []

    class Capture:
        @celeriac.plugin.hookimpl
        def celeriac_after_publish(self, message: Any, queue: str, app: Celeriac) -> None:
            sent.append(dict(message.headers()))

    captured = Celeriac(
        "traced", broker="memory://", plugins=[celeriac.testing, Capture()], env={}, config=False
    )
    try:
        captured.send_task("anything", (1,))
    finally:
        captured.close()
    (headers,) = sent
    version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    assert version == "00"
    (publish,) = exporter.get_finished_spans()
    assert int(trace_id, 16) == publish.context.trace_id and int(span_id, 16) == publish.context.span_id


def test_importing_the_plugin_sets_no_tracer_provider() -> None:
    import importlib

    importlib.reload(celeriac_opentelemetry)
    assert celeriac_opentelemetry.SCOPE == "celeriac_opentelemetry"


def test_spans_of_a_provider_set_after_the_first_publish_are_recorded() -> None:
    """The plugin keeps one tracer per process; one taken before the provider was set must
    follow it (in a process of its own: the API takes one provider per process)."""
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from celeriac import Celeriac

        app = Celeriac("t", broker="memory://", config=False, env={})
        task = app.task(name="t.noop")(lambda: None)
        task.delay()  # before any provider: the plugin takes its tracer now
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        task.delay()
        print([span.name for span in exporter.get_finished_spans()])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['apply_async/t.noop']"
