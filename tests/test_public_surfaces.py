"""The two public surfaces: celeriac (task authors) and celeriac.plugin (plugin authors).

celeriac.plugin keeps every name of API 1.0; a name to be removed warns for a whole minor
release first (docs/writing-plugins.md).
"""

from __future__ import annotations

import pytest

import celeriac
import celeriac.plugin
from celeriac import testing
from celeriac.plugin import Envelope

#: celeriac.plugin.__all__ of plugin API 1.0.
API_1_0 = {
    "API_VERSION", "BatchStore", "BeatLock", "Bootstep", "BootstepError", "Broadcaster", "CONSUMER",
    "Celeriac", "CeleriacError", "CeleryChords", "ChordCounter", "Codec", "Compressor", "Config",
    "ConfigError", "ConfigSection", "ContentDisallowedError", "ControlCommand", "DeadLetter", "Delivery",
    "DirectReplies", "Disposition", "EVENTS", "Envelope", "EventSink", "Executor", "Finished", "Job", "Key",
    "MessageError", "Outcome", "POOL", "PeriodicTask", "PluginError", "Pool", "PoolSpec", "RESULT_STORE",
    "REVOKED", "ReplyQueue", "ResultHandle", "ResultRecord", "ResultStore", "ResultStoreSpec",
    "RoutingError", "Running", "Schedule", "ScheduleStore", "ScheduleStoreSpec", "ScheduleType",
    "SerializationError", "Serializer", "SharedRateLimiter", "Signature", "SoftTimeLimitExceededError",
    "StepContext", "Subscription", "TIMER", "TRANSPORT", "Task", "TaskCall", "TaskMessage", "TaskOptions",
    "TaskRequest", "TaskRevokedError", "TimeLimitExceededError", "TimeoutError", "Transport",
    "TransportSpec", "Worker", "WorkerLostError", "exchange_of", "from_kombu", "hookimpl", "load_app",
    "parse_datetime", "precedence", "retry_delay", "run_cli", "run_safely", "running", "time_limits",
    "to_kombu",
}  # fmt: skip


def test_the_plugin_surface_keeps_every_name_of_api_1_0() -> None:
    assert set(celeriac.plugin.__all__) >= API_1_0
    for name in celeriac.plugin.__all__:
        assert hasattr(celeriac.plugin, name), name
    assert celeriac.plugin.API_VERSION >= (1, 1)


def test_every_name_of_the_task_author_surface_is_there() -> None:
    for name in celeriac.__all__:
        assert hasattr(celeriac, name), name
    assert celeriac.states.SUCCESS == "SUCCESS"


def test_the_kombu_envelope_helpers_round_trip() -> None:
    """Shared by celeriac-redis (kombu layout) and celeriac-sqs: a documented helper."""
    envelope = Envelope(body=b"{}", content_type="application/json", headers={"id": "1"})
    data = celeriac.plugin.to_kombu(envelope, routing_key="celery")
    back = celeriac.plugin.from_kombu(data)
    assert (back.body, back.headers) == (b"{}", {"id": "1"})


def test_the_executor_s_old_entry_names_warn() -> None:
    app = celeriac.Celeriac("t", broker="memory://", plugins=[testing], env={}, config=False)
    executor = celeriac.plugin.Executor(app)
    with pytest.warns(DeprecationWarning, match="Executor.finish_many is deprecated"):
        assert executor.finish_many([]) == []
    app.close()


def test_the_executor_s_finish_of_api_1_0_still_records_one_request() -> None:
    app = celeriac.Celeriac("t", broker="memory://", plugins=[testing], env={}, config=False)

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    request = celeriac.plugin.TaskRequest(message=app.build_message("t.add", (1, 2)), queue="celery")
    executor = celeriac.plugin.Executor(app)
    with pytest.warns(DeprecationWarning, match=r"Executor.finish\(request"):
        outcome = executor.finish(request, 3, None, 0.01, ())
    assert outcome.state == celeriac.states.SUCCESS
    assert app.AsyncResult(request.id).get(timeout=1) == 3
    app.close()
