"""One trace across Celery and celeriac, both ways, with OpenTelemetry's Celery instrumentation.

A real Celery client (a process of its own, instrumented by opentelemetry-instrumentation-celery)
sends a task a celeriac worker runs; a celeriac client sends a task a real Celery worker
(a process, instrumented the same way) runs. They share one Redis (celeriac's kombu layout,
under a key prefix of the test's own). The Celery processes write their spans as JSON lines
to a file; celeriac's spans are in this process's in-memory exporter. Either way, the run
span's parent is the other side's publish span, in one trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from celeriac import Celeriac
from celeriac.testing import ProcessGroup
from celeriac.testing import subprocess_env
from celeriac.testing import wait_for
from celeriac.testing import worker_thread

pytest.importorskip("opentelemetry.instrumentation.celery")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CELERY_SIDE = """
import json, os

from celery import Celery
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor


def line(span):
    return json.dumps({
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
    }) + "\\n"


provider = TracerProvider()
spans = open(os.environ["SPANS_FILE"], "a")
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=spans, formatter=line)))
trace.set_tracer_provider(provider)
CeleryInstrumentor().instrument()

prefix = os.environ["INTEROP_PREFIX"]
app = Celery("celery_side", broker=os.environ["INTEROP_URL"], backend=os.environ["INTEROP_URL"])
app.conf.update(
    broker_transport_options={"global_keyprefix": prefix},
    result_backend_transport_options={"global_keyprefix": prefix},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="proj.add")
def add(x, y):
    return x + y


if __name__ == "__main__":
    # A registered task's delay(): the instrumentation ends its publish span only for those.
    result = add.delay(2, 3)
    print(result.id, result.get(timeout=30), flush=True)
"""


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _named(directory: Path, name: str) -> list[dict[str, Any]]:
    """The Celery processes' spans called ``name``, from their JSON-lines file."""
    path = directory / "celery-spans.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [span for span in map(json.loads, filter(None, lines)) if span["name"] == name]


def _finished(exporter: InMemorySpanExporter, name: str) -> list[Any]:
    """This process's (celeriac's) finished spans called ``name``."""
    return [span for span in exporter.get_finished_spans() if span.name == name]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project on this test's own Redis keys: Celery's module, celeriac's config, the env."""
    from celeriac_redis import testing

    url = testing.require_redis(testing.server_url())
    with testing.private_prefix(url) as prefix:
        (tmp_path / "celery_side.py").write_text(textwrap.dedent(CELERY_SIDE))
        (tmp_path / "celeriac.toml").write_text(
            f'broker = "{url}"\n[worker]\npoll_timeout = 0.2\n'
            f'[redis]\nlayout = "kombu"\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
            f'kombu_global_keyprefix = "{prefix}"\n'
        )
        env = subprocess_env(
            tmp_path,
            drop=("CELERIAC_", "CELERY_", "OTEL_"),
            INTEROP_URL=url,
            INTEROP_PREFIX=prefix,
            SPANS_FILE=str(tmp_path / "celery-spans.jsonl"),
        )
        yield tmp_path, env


@pytest.fixture
def celeriac_app(shared: tuple[Path, dict[str, str]], exporter: InMemorySpanExporter) -> Iterator[Celeriac]:
    exporter.clear()
    app = Celeriac("proj", config=str(shared[0] / "celeriac.toml"), env={})
    yield app
    app.close()


def test_a_celery_client_publish_is_the_parent_of_the_celeriac_run(
    shared: tuple[Path, dict[str, str]], celeriac_app: Celeriac, exporter: InMemorySpanExporter
) -> None:
    directory, env = shared

    @celeriac_app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(celeriac_app):
        command = [sys.executable, "celery_side.py"]
        sent = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=90)
        assert sent.returncode == 0, sent.stderr
        task_id, value = sent.stdout.split()
        assert value == "5"
        run = wait_for(lambda: _finished(exporter, "run/proj.add"), 10, "celeriac's run span")[0]
    (publish,) = _named(directory, "apply_async/proj.add")
    assert publish["kind"] == "PRODUCER" and run.kind == SpanKind.CONSUMER
    assert run.attributes["messaging.message.id"] == task_id
    assert run.parent is not None
    assert _hex(run.parent.span_id, 16) == publish["span_id"]
    assert _hex(run.context.trace_id, 32) == publish["trace_id"]


def test_a_celeriac_publish_is_the_parent_of_the_celery_run(
    shared: tuple[Path, dict[str, str]], celeriac_app: Celeriac, exporter: InMemorySpanExporter
) -> None:
    directory, env = shared
    group = ProcessGroup(directory, env)
    try:
        group.start(
            [sys.executable, "-m", "celery", "-A", "celery_side", "worker", "-P", "solo",
             "-n", "celery@traced", "--without-mingle", "--without-gossip", "-l", "INFO"],
            ready="ready.", log="celery", timeout=60,
        )  # fmt: skip
        result = celeriac_app.send_task("proj.add", (4, 5))
        assert result.get(timeout=30) == 9
        runs = wait_for(lambda: _named(directory, "run/proj.add"), 10, "Celery's run span")
    finally:
        group.kill()
    (publish,) = _finished(exporter, "apply_async/proj.add")
    assert publish.kind == SpanKind.PRODUCER and publish.attributes["messaging.message.id"] == result.id
    (run,) = runs
    assert run["kind"] == "CONSUMER"
    assert run["parent_id"] == _hex(publish.context.span_id, 16)
    assert run["trace_id"] == _hex(publish.context.trace_id, 32)
