"""celeriac: a distributed task queue built as a small kernel plus plugins."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac._client.app import Celeriac
from celeriac._client.result import AsyncResult
from celeriac._client.task import Task
from celeriac._client.task import TaskCall
from celeriac._contract.hookspecs import hookimpl
from celeriac._contract.protocols import Broadcaster
from celeriac._contract.protocols import ChordCounter
from celeriac._contract.protocols import Compressor
from celeriac._contract.protocols import ControlCommand
from celeriac._contract.protocols import DeadLetter
from celeriac._contract.protocols import Delivery
from celeriac._contract.protocols import DirectReplies
from celeriac._contract.protocols import Envelope
from celeriac._contract.protocols import EventSink
from celeriac._contract.protocols import Pool
from celeriac._contract.protocols import PoolSpec
from celeriac._contract.protocols import ResultRecord
from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import ResultStoreSpec
from celeriac._contract.protocols import ScheduleStore
from celeriac._contract.protocols import ScheduleStoreSpec
from celeriac._contract.protocols import ScheduleType
from celeriac._contract.protocols import Serializer
from celeriac._contract.protocols import Subscription
from celeriac._contract.protocols import Transport
from celeriac._contract.protocols import TransportSpec
from celeriac._model import states
from celeriac._model.message import TaskMessage
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.request import TaskRequest
from celeriac._model.schedules import BeatLock
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import Schedule

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
