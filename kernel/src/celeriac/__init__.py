"""celeriac: a distributed task queue built as a small kernel plus plugins."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac._model import states
from celeriac._model.message import TaskMessage
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.request import TaskRequest
from celeriac._model.schedules import BeatLock
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import Schedule
from celeriac.app import Celeriac
from celeriac.hookspecs import hookimpl
from celeriac.protocols import Broadcaster
from celeriac.protocols import ChordCounter
from celeriac.protocols import Compressor
from celeriac.protocols import ControlCommand
from celeriac.protocols import DeadLetter
from celeriac.protocols import Delivery
from celeriac.protocols import DirectReplies
from celeriac.protocols import Envelope
from celeriac.protocols import EventSink
from celeriac.protocols import Pool
from celeriac.protocols import PoolSpec
from celeriac.protocols import ResultRecord
from celeriac.protocols import ResultStore
from celeriac.protocols import ResultStoreSpec
from celeriac.protocols import ScheduleStore
from celeriac.protocols import ScheduleStoreSpec
from celeriac.protocols import ScheduleType
from celeriac.protocols import Serializer
from celeriac.protocols import Subscription
from celeriac.protocols import Transport
from celeriac.protocols import TransportSpec
from celeriac.result import AsyncResult
from celeriac.task import Task
from celeriac.task import TaskCall

try:
    __version__ = _version("celeriac")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "AsyncResult",
    "BeatLock",
    "Broadcaster",
    "Celeriac",
    "ChordCounter",
    "Compressor",
    "ControlCommand",
    "DeadLetter",
    "Delivery",
    "DirectReplies",
    "Disposition",
    "Envelope",
    "EventSink",
    "Outcome",
    "PeriodicTask",
    "Pool",
    "PoolSpec",
    "ResultRecord",
    "ResultStore",
    "ResultStoreSpec",
    "Schedule",
    "ScheduleStore",
    "ScheduleStoreSpec",
    "ScheduleType",
    "Serializer",
    "Subscription",
    "Task",
    "TaskCall",
    "TaskMessage",
    "TaskRequest",
    "Transport",
    "TransportSpec",
    "__version__",
    "hookimpl",
    "states",
]
