"""celeriac: a distributed task queue built as a small kernel plus plugins.

This module is the task author's API, shaped like Celery's top level: the app, tasks,
results, canvas, states and errors. Plugin authors use :mod:`celeriac.plugin`; every module
whose name starts with an underscore is private and may change in any release.
"""

from celeriac import signals
from celeriac._beat.schedule_edit import StoredSchedule
from celeriac._client.app import Celeriac
from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature
from celeriac._client.canvas import chain
from celeriac._client.canvas import chord
from celeriac._client.canvas import group
from celeriac._client.canvas_build import chunks
from celeriac._client.canvas_build import signature
from celeriac._client.canvas_build import starmap
from celeriac._client.canvas_build import xmap
from celeriac._client.canvas_build import xstarmap
from celeriac._client.result import AsyncResult
from celeriac._client.result import GroupResult
from celeriac._client.shared import SharedTask
from celeriac._client.shared import current_app
from celeriac._client.shared import shared_task
from celeriac._client.task import Task
from celeriac._client.task import TaskCall
from celeriac._model import states
from celeriac._model.errors import CeleriacError
from celeriac._model.errors import ChordError
from celeriac._model.errors import ConfigError
from celeriac._model.errors import ContentDisallowedError
from celeriac._model.errors import Ignore
from celeriac._model.errors import MaxRetriesExceededError
from celeriac._model.errors import MessageError
from celeriac._model.errors import NotRegisteredError
from celeriac._model.errors import PluginError
from celeriac._model.errors import PublishError
from celeriac._model.errors import PublishTimeoutError
from celeriac._model.errors import Replaced
from celeriac._model.errors import Retry
from celeriac._model.errors import RoutingError
from celeriac._model.errors import SerializationError
from celeriac._model.errors import SoftTimeLimitExceededError
from celeriac._model.errors import TaskError
from celeriac._model.errors import TaskRevokedError
from celeriac._model.errors import TimeLimitExceededError
from celeriac._model.errors import TimeoutError  # noqa: A004 - celeriac's own, as Celery's celery.exceptions.TimeoutError
from celeriac._model.errors import WorkerLostError
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import Schedule
from celeriac._model.version import __version__

__all__ = [
    "AsyncResult",
    "Celeriac",
    "CeleriacError",
    "Chain",
    "Chord",
    "ChordError",
    "ConfigError",
    "ContentDisallowedError",
    "Group",
    "GroupResult",
    "Ignore",
    "MaxRetriesExceededError",
    "MessageError",
    "NotRegisteredError",
    "PeriodicTask",
    "PluginError",
    "PublishError",
    "PublishTimeoutError",
    "Replaced",
    "Retry",
    "RoutingError",
    "Schedule",
    "SerializationError",
    "SharedTask",
    "Signature",
    "SoftTimeLimitExceededError",
    "StoredSchedule",
    "Task",
    "TaskCall",
    "TaskError",
    "TaskRevokedError",
    "TimeLimitExceededError",
    "TimeoutError",
    "WorkerLostError",
    "__version__",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "group",
    "shared_task",
    "signals",
    "signature",
    "starmap",
    "states",
    "xmap",
    "xstarmap",
]
