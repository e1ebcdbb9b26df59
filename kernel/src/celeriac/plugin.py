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

1.1 added :class:`PoolContext` (what a pool factory receives), :func:`after_fork`,
:class:`EntryStore` and the hook specification module ``hookspecs`` (for a plugin's own
tests: ``pluggy.PluginManager(hookspecs.PROJECT)``); it deprecated a pool factory taking
``(config, execute)``, ``Executor.finish(request, retval, ...)`` for one request,
``Executor.call`` and ``Executor.finish_many`` (now ``run`` and ``finish``). ``Finished``
became a named record. 1.1 also added the key-value base for result stores (:class:`KeyValue`,
:class:`KeyValueResultStore` and its errors), :class:`DeadLetterPurger` (an optional transport
capability), :class:`ConfirmedPublishing` and :class:`PublishError` (a transport whose
``publish()`` returns before the broker confirmed), :class:`ReservingPool` (a pool that
chooses how many messages its worker reserves), the beat schedule as stored
(:class:`StoredSchedule`, :func:`schedule_rows`) and :func:`redact` / :func:`redact_url`,
the optional transport capability :class:`StartLedger`, the hook
``celeriac_app_closing(app)``, the optional result-store capability :class:`DeferredStore`
(with :class:`PendingWrite` and ``Outcome.written``), and :class:`TaskIds` (random ids as
``uuid.uuid4()`` makes them, without a system call each).
"""

from collections.abc import Sequence

from celeriac._beat.schedule_edit import StoredSchedule
from celeriac._beat.schedule_view import ScheduleRow
from celeriac._beat.schedule_view import schedule_rows
from celeriac._cli.app import load_app
from celeriac._client.app import Celeriac
from celeriac._client.canvas import Signature
from celeriac._client.confirms import ConfirmedPublishing
from celeriac._client.execution import Executor
from celeriac._client.execution import Finished
from celeriac._client.ids import TaskIds
from celeriac._client.pools import Job
from celeriac._client.pools import PoolContext
from celeriac._client.pools import run_safely
from celeriac._client.pools import time_limits
from celeriac._client.result import ResultHandle
from celeriac._client.task import Task
from celeriac._client.task import TaskCall
from celeriac._client.task_options import TaskOptions
from celeriac._client.task_options import retry_delay
from celeriac._contract import hookspecs
from celeriac._contract.bootsteps import Bootstep
from celeriac._contract.bootsteps import Key
from celeriac._contract.bootsteps import StepContext
from celeriac._contract.codec import Codec
from celeriac._contract.fork import after_fork
from celeriac._contract.hookspecs import hookimpl
from celeriac._contract.kombu_envelope import from_kombu
from celeriac._contract.kombu_envelope import to_kombu
from celeriac._contract.kvstore import KeyValue
from celeriac._contract.kvstore import KeyValueResultStore
from celeriac._contract.kvstore import StoreUnreachableError
from celeriac._contract.kvstore import ValueRefusedError
from celeriac._contract.kvstore import decode_value
from celeriac._contract.kvstore import encode_value
from celeriac._contract.pending import finished_by
from celeriac._contract.protocols import START_LEDGER_TTL
from celeriac._contract.protocols import BatchStore
from celeriac._contract.protocols import Broadcaster
from celeriac._contract.protocols import CeleryChords
from celeriac._contract.protocols import ChordCounter
from celeriac._contract.protocols import Compressor
from celeriac._contract.protocols import DeadLetterPurger
from celeriac._contract.protocols import DeferredStore
from celeriac._contract.protocols import DirectReplies
from celeriac._contract.protocols import EventSink
from celeriac._contract.protocols import PendingWrite
from celeriac._contract.protocols import Pool
from celeriac._contract.protocols import ReplyQueue
from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import ScheduleStore
from celeriac._contract.protocols import Serializer
from celeriac._contract.protocols import SharedRateLimiter
from celeriac._contract.protocols import StartLedger
from celeriac._contract.protocols import Subscription
from celeriac._contract.protocols import Transport
from celeriac._contract.reserve import ReservingPool
from celeriac._contract.specs import ControlCommand
from celeriac._contract.specs import PoolSpec
from celeriac._contract.specs import ResultStoreSpec
from celeriac._contract.specs import ScheduleStoreSpec
from celeriac._contract.specs import ScheduleType
from celeriac._contract.specs import TransportSpec
from celeriac._model.config import Config
from celeriac._model.config import ConfigSection
from celeriac._model.errors import BootstepError
from celeriac._model.errors import CeleriacError
from celeriac._model.errors import ConfigError
from celeriac._model.errors import ContentDisallowedError
from celeriac._model.errors import MessageError
from celeriac._model.errors import PluginError
from celeriac._model.errors import PublishError
from celeriac._model.errors import PublishTimeoutError
from celeriac._model.errors import RoutingError
from celeriac._model.errors import SerializationError
from celeriac._model.errors import SoftTimeLimitExceededError
from celeriac._model.errors import TaskRevokedError
from celeriac._model.errors import TimeLimitExceededError
from celeriac._model.errors import TimeoutError  # noqa: A004 - celeriac's own, as Celery's celery.exceptions.TimeoutError
from celeriac._model.errors import WorkerLostError
from celeriac._model.message import TaskMessage
from celeriac._model.message import parse_datetime
from celeriac._model.outcome import Disposition
from celeriac._model.outcome import Outcome
from celeriac._model.records import DeadLetter
from celeriac._model.records import Delivery
from celeriac._model.records import Envelope
from celeriac._model.records import ResultRecord
from celeriac._model.redaction import redact
from celeriac._model.redaction import redact_url
from celeriac._model.request import TaskRequest
from celeriac._model.routing import exchange_of
from celeriac._model.running import Running
from celeriac._model.running import running
from celeriac._model.schedules import BeatLock
from celeriac._model.schedules import EntryStore
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import Schedule
from celeriac._model.states import precedence
from celeriac._worker.keys import CONSUMER
from celeriac._worker.keys import EVENTS
from celeriac._worker.keys import POOL
from celeriac._worker.keys import RESULT_STORE
from celeriac._worker.keys import REVOKED
from celeriac._worker.keys import TIMER
from celeriac._worker.keys import TRANSPORT
from celeriac._worker.worker import Worker

#: The version of this API (major, minor): a plugin may check it at import.
API_VERSION = (1, 1)


def run_cli(prog_name: str = "celeriac", args: Sequence[str] | None = None) -> None:
    """Run the ``celeriac`` command line on ``args`` (default ``sys.argv[1:]``), as a launcher
    that must set up first; exits with the command's status.

    For plugins that ship their own launcher (``celeriac-gevent`` patches the standard library,
    then hands over) and for framework commands that run celeriac's (``flask celeriac worker``
    passes ``-A`` and the rest of its line); the command line is imported here, when called,
    not with this module.
    """
    from celeriac._cli.main import main

    main(args=list(args) if args is not None else None, prog_name=prog_name)


__all__ = [
    "API_VERSION",
    "CONSUMER",
    "EVENTS",
    "POOL",
    "RESULT_STORE",
    "REVOKED",
    "START_LEDGER_TTL",
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
    "DeadLetterPurger",
    "DeferredStore",
    "Delivery",
    "DirectReplies",
    "Disposition",
    "EntryStore",
    "Envelope",
    "EventSink",
    "Executor",
    "Finished",
    "Job",
    "Key",
    "KeyValue",
    "KeyValueResultStore",
    "MessageError",
    "Outcome",
    "PendingWrite",
    "PeriodicTask",
    "PluginError",
    "Pool",
    "PoolContext",
    "PoolSpec",
    "PublishError",
    "PublishTimeoutError",
    "ReplyQueue",
    "ReservingPool",
    "ResultHandle",
    "ResultRecord",
    "ResultStore",
    "ResultStoreSpec",
    "RoutingError",
    "Running",
    "Schedule",
    "ScheduleRow",
    "ScheduleStore",
    "ScheduleStoreSpec",
    "ScheduleType",
    "SerializationError",
    "Serializer",
    "SharedRateLimiter",
    "Signature",
    "SoftTimeLimitExceededError",
    "StartLedger",
    "StepContext",
    "StoreUnreachableError",
    "StoredSchedule",
    "Subscription",
    "Task",
    "TaskCall",
    "TaskIds",
    "TaskMessage",
    "TaskOptions",
    "TaskRequest",
    "TaskRevokedError",
    "TimeLimitExceededError",
    "TimeoutError",
    "Transport",
    "TransportSpec",
    "ValueRefusedError",
    "Worker",
    "WorkerLostError",
    "after_fork",
    "decode_value",
    "encode_value",
    "exchange_of",
    "finished_by",
    "from_kombu",
    "hookimpl",
    "hookspecs",
    "load_app",
    "parse_datetime",
    "precedence",
    "redact",
    "redact_url",
    "retry_delay",
    "run_cli",
    "run_safely",
    "running",
    "schedule_rows",
    "time_limits",
    "to_kombu",
]
