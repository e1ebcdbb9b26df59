"""celeriac-events: where a worker's monitoring events go, and how to watch them.

Workers started with ``-E`` (``worker.send_events = true``) send Celery-shaped events to
the sinks ``[events] sinks`` names: ``broker`` (the default; fan-out on the ``celeryev``
channel), ``jsonl`` and ``log``. :class:`ClusterState` folds events into workers and
tasks; ``celeriac events`` shows it live. Importing this module starts, opens and
configures nothing.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac_events._buffer import EventBuffer
from celeriac_events._config import SECTION
from celeriac_events._config import EventsConfig
from celeriac_events._hooks import celeriac_add_bootsteps
from celeriac_events._hooks import celeriac_add_cli_commands
from celeriac_events._hooks import celeriac_add_config_sections
from celeriac_events._hooks import celeriac_add_event_sinks
from celeriac_events._hooks import celeriac_after_publish
from celeriac_events._hooks import celeriac_app_closing
from celeriac_events._hooks import celeriac_app_configured
from celeriac_events._hooks import make_sinks
from celeriac_events._receiver import EventReceiver
from celeriac_events._receiver import decode_events
from celeriac_events._receiver import subscribe_events
from celeriac_events._sent import SentEvents
from celeriac_events._sinks import BrokerSink
from celeriac_events._sinks import JsonlSink
from celeriac_events._sinks import LogSink
from celeriac_events._state import HEARTBEAT_EXPIRY
from celeriac_events._state import ClusterState
from celeriac_events._state import TaskInfo
from celeriac_events._state import WorkerInfo
from celeriac_events._step import BrokerSinkStep
from celeriac_events._wire import EVENT_CHANNEL
from celeriac_events._wire import encode_batch
from celeriac_events._wire import encode_event
from celeriac_events._wire import encode_events

try:
    __version__ = _version("celeriac-events")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "EVENT_CHANNEL",
    "HEARTBEAT_EXPIRY",
    "SECTION",
    "BrokerSink",
    "BrokerSinkStep",
    "ClusterState",
    "EventBuffer",
    "EventReceiver",
    "EventsConfig",
    "JsonlSink",
    "LogSink",
    "SentEvents",
    "TaskInfo",
    "WorkerInfo",
    "__version__",
    "celeriac_add_bootsteps",
    "celeriac_add_cli_commands",
    "celeriac_add_config_sections",
    "celeriac_add_event_sinks",
    "celeriac_after_publish",
    "celeriac_app_closing",
    "celeriac_app_configured",
    "decode_events",
    "encode_batch",
    "encode_event",
    "encode_events",
    "make_sinks",
    "subscribe_events",
]
