"""celeriac-opentelemetry: OpenTelemetry spans for publishing and running tasks.

Installed, it opens a PRODUCER span for every publish and a CONSUMER span for every run,
and carries the trace context in the message headers the way OpenTelemetry's Celery
instrumentation does, so a trace crosses Celery and celeriac. Spans go wherever the
process's tracer provider sends them; with none configured, the API's no-op tracer costs
next to nothing. Not installed, it costs nothing: the kernel skips hooks nobody implements.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac_opentelemetry._tracing import SCOPE
from celeriac_opentelemetry._tracing import celeriac_after_publish
from celeriac_opentelemetry._tracing import celeriac_before_publish
from celeriac_opentelemetry._tracing import celeriac_task_failure
from celeriac_opentelemetry._tracing import celeriac_task_postrun
from celeriac_opentelemetry._tracing import celeriac_task_prerun

try:
    __version__ = _version("celeriac-opentelemetry")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "SCOPE",
    "__version__",
    "celeriac_after_publish",
    "celeriac_before_publish",
    "celeriac_task_failure",
    "celeriac_task_postrun",
    "celeriac_task_prerun",
]
