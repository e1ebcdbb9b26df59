"""The public API for plugin authors: everything a plugin may import from the kernel.

A plugin imports from three modules only: :mod:`celeriac` (what task authors use),
``celeriac.plugin`` (this module: hooks, protocols, records, bootstep keys, the pool and CLI
helpers) and :mod:`celeriac.testing` (the pytest plugin and test helpers). Every other
module of the kernel is private and may change in any release; ``make lint`` keeps the
plugins in this repository to these three (import-linter).

This surface is versioned by :data:`API_VERSION`. Within a major version names are only
added; a name to be removed is first deprecated for a whole minor release (it warns when
used) and the change is listed in docs/writing-plugins.md. Hooks follow pluggy's rules:
arguments may be added, never renamed or removed.
"""

from celeriac.app import Celeriac
from celeriac.bootsteps import Bootstep
from celeriac.bootsteps import Key
from celeriac.bootsteps import StepContext
from celeriac.canvas import Signature
from celeriac.cli_app import load_app
from celeriac.codec import Codec
from celeriac.config import Config
from celeriac.config import ConfigSection
from celeriac.confirms import ConfirmedPublishing
from celeriac.errors import BootstepError
from celeriac.errors import CeleriacError
from celeriac.errors import ConfigError
from celeriac.errors import ContentDisallowedError
from celeriac.errors import MessageError
from celeriac.errors import PluginError
from celeriac.errors import PublishError
from celeriac.errors import RoutingError
from celeriac.errors import SerializationError
from celeriac.errors import SoftTimeLimitExceededError
from celeriac.errors import TaskRevokedError
from celeriac.errors import TimeLimitExceededError
from celeriac.errors import TimeoutError  # noqa: A004 - celeriac's own, as Celery's celery.exceptions.TimeoutError
from celeriac.errors import WorkerLostError
from celeriac.execution import Executor
from celeriac.execution import Finished
from celeriac.hookspecs import hookimpl
from celeriac.kombu_envelope import from_kombu
from celeriac.kombu_envelope import to_kombu
from celeriac.message import TaskMessage
from celeriac.message import parse_datetime
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.pools import Job
from celeriac.pools import run_safely
from celeriac.pools import time_limits
from celeriac.protocols import BatchStore
from celeriac.protocols import Broadcaster
from celeriac.protocols import CeleryChords
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
from celeriac.protocols import ReplyQueue
from celeriac.protocols import ResultRecord
from celeriac.protocols import ResultStore
from celeriac.protocols import ResultStoreSpec
from celeriac.protocols import ScheduleStore
from celeriac.protocols import ScheduleStoreSpec
from celeriac.protocols import ScheduleType
from celeriac.protocols import Serializer
from celeriac.protocols import SharedRateLimiter
from celeriac.protocols import Subscription
from celeriac.protocols import Transport
from celeriac.protocols import TransportSpec
from celeriac.request import TaskRequest
from celeriac.reserve import ReservingPool
from celeriac.result import ResultHandle
from celeriac.routing import exchange_of
from celeriac.running import Running
from celeriac.running import running
from celeriac.schedules import BeatLock
from celeriac.schedules import PeriodicTask
from celeriac.schedules import Schedule
from celeriac.states import precedence
from celeriac.task import Task
from celeriac.task import TaskCall
from celeriac.task import TaskOptions
from celeriac.task import retry_delay
from celeriac.worker.keys import CONSUMER
from celeriac.worker.keys import EVENTS
from celeriac.worker.keys import POOL
from celeriac.worker.keys import RESULT_STORE
from celeriac.worker.keys import REVOKED
from celeriac.worker.keys import TIMER
from celeriac.worker.keys import TRANSPORT
from celeriac.worker.worker import Worker

#: The version of this API (major, minor): a plugin may check it at import.
API_VERSION = (1, 0)


def run_cli(prog_name: str = "celeriac") -> None:
    """Run the ``celeriac`` command line on ``sys.argv``, as a launcher that must set up first.

    For plugins that ship their own launcher (``celeriac-gevent`` patches the standard library,
    then hands over); the command line is imported here, when called, not with this module.
    """
    from celeriac.cli import main

    main(prog_name=prog_name)


__all__ = [
    "API_VERSION",
    "CONSUMER",
    "EVENTS",
    "POOL",
    "RESULT_STORE",
    "REVOKED",
    "TIMER",
    "TRANSPORT",
    "BatchStore",
    "BeatLock",
    "Bootstep",
    "BootstepError",
    "Broadcaster",
    "Celeriac",
    "CeleriacError",
    "CeleryChords",
    "ChordCounter",
    "Codec",
    "Compressor",
    "Config",
    "ConfigError",
    "ConfigSection",
    "ConfirmedPublishing",
    "ContentDisallowedError",
    "ControlCommand",
    "DeadLetter",
    "Delivery",
    "DirectReplies",
    "Disposition",
    "Envelope",
    "EventSink",
    "Executor",
    "Finished",
    "Job",
    "Key",
    "MessageError",
    "Outcome",
    "PeriodicTask",
    "PluginError",
    "Pool",
    "PoolSpec",
    "PublishError",
    "ReplyQueue",
    "ReservingPool",
    "ResultHandle",
    "ResultRecord",
    "ResultStore",
    "ResultStoreSpec",
    "RoutingError",
    "Running",
    "Schedule",
    "ScheduleStore",
    "ScheduleStoreSpec",
    "ScheduleType",
    "SerializationError",
    "Serializer",
    "SharedRateLimiter",
    "Signature",
    "SoftTimeLimitExceededError",
    "StepContext",
    "Subscription",
    "Task",
    "TaskCall",
    "TaskMessage",
    "TaskOptions",
    "TaskRequest",
    "TaskRevokedError",
    "TimeLimitExceededError",
    "TimeoutError",
    "Transport",
    "TransportSpec",
    "Worker",
    "WorkerLostError",
    "exchange_of",
    "from_kombu",
    "hookimpl",
    "load_app",
    "parse_datetime",
    "precedence",
    "retry_delay",
    "run_cli",
    "run_safely",
    "running",
    "time_limits",
    "to_kombu",
]
