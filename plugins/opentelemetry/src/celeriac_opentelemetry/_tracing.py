"""Spans for publishing and running tasks, with the trace context in the message headers.

Names, kinds and attributes follow OpenTelemetry's Celery instrumentation: a PRODUCER span
``apply_async/<task>`` around each publish and a CONSUMER span ``run/<task>`` around each
run, ``celery.action``, ``celery.task_name``, ``messaging.message.id`` and, on a run,
``celery.state``. The context travels as W3C ``traceparent``/``tracestate`` message
headers, where that instrumentation puts and looks for it, so one trace crosses Celery
clients and workers and celeriac's in either direction.

Open spans live in a context variable of the thread that opened them: the publish hooks
run in the publishing thread, and a run's prerun and postrun hooks in the thread that runs
the task, so nothing here is shared between threads.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import TYPE_CHECKING
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode

from celeriac.plugin import hookimpl

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac.plugin import Task
    from celeriac.plugin import TaskMessage
    from celeriac.plugin import TaskRequest

log = logging.getLogger("celeriac.opentelemetry")

#: The instrumentation scope, as the Celery instrumentation names its own.
SCOPE = "celeriac_opentelemetry"
_FAILED = frozenset({"FAILURE"})

#: Spans opened in this context and not yet ended, by task id (publish and run apart).
_open: contextvars.ContextVar[dict[tuple[str, str], tuple[trace.Span, object]] | None] = (
    contextvars.ContextVar("celeriac_opentelemetry_open", default=None)
)


def _spans() -> dict[tuple[str, str], tuple[trace.Span, object]]:
    spans = _open.get()
    if spans is None:
        spans = {}
        _open.set(spans)
    return spans


@functools.cache
def _tracer() -> trace.Tracer:
    """One tracer per process: ``get_tracer`` builds a new one at every call (a quarter to a
    third of these hooks' time). One got before the tracer provider is set follows it once it
    is (the API's ``ProxyTracer``), so caching it changes nothing a user configures."""
    return trace.get_tracer(SCOPE)


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads a context from a message's header table (values may be non-strings)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        return [value if isinstance(value, str) else str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


@hookimpl
def celeriac_before_publish(message: TaskMessage, queue: str, app: Celeriac) -> None:
    span = _tracer().start_span(f"apply_async/{message.task}", kind=trace.SpanKind.PRODUCER)
    if span.is_recording():
        span.set_attribute("celery.action", "apply_async")
        span.set_attribute("celery.task_name", message.task)
        span.set_attribute("messaging.message.id", message.id)
        span.set_attribute("messaging.destination.name", queue)
    token = otel_context.attach(trace.set_span_in_context(span))
    headers = message.extra_headers
    if isinstance(headers, MutableMapping):
        # Custom headers are encoded after this hook, from this very mapping.
        propagate.inject(headers)
    else:
        log.debug("message %s has read-only custom headers; no trace context sent", message.id)
    _spans()[("publish", message.id)] = (span, token)


@hookimpl
def celeriac_after_publish(message: TaskMessage, queue: str, app: Celeriac) -> None:
    _end(("publish", message.id))


@hookimpl
def celeriac_task_prerun(task: Task[Any, Any], request: TaskRequest) -> None:
    parent = propagate.extract(request.message.extra_headers, getter=_GETTER)
    span = _tracer().start_span(f"run/{task.name}", context=parent, kind=trace.SpanKind.CONSUMER)
    if span.is_recording():
        span.set_attribute("celery.action", "run")
        span.set_attribute("celery.task_name", task.name)
        span.set_attribute("messaging.message.id", request.id)
        span.set_attribute("celery.hostname", request.hostname or "")
        span.set_attribute("celery.retries", request.retries)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    _spans()[("run", request.id)] = (span, token)


@hookimpl
def celeriac_task_failure(
    task: Task[Any, Any], request: TaskRequest, exception: BaseException, traceback: str
) -> None:
    found = _spans().get(("run", request.id))
    if found is not None and found[0].is_recording():
        found[0].record_exception(exception)
        found[0].set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"))


@hookimpl
def celeriac_task_postrun(task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
    found = _spans().get(("run", request.id))
    if found is not None and found[0].is_recording():
        found[0].set_attribute("celery.state", state)
    _end(("run", request.id))


def _end(key: tuple[str, str]) -> None:
    found = _spans().pop(key, None)
    if found is None:
        return
    span, token = found
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:  # detached out of order (a hook of another plugin raised): keep going
        log.debug("trace context of %s detached out of order", key)
    span.end()
