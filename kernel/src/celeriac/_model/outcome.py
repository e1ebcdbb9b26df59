"""What became of one task request, reported by a pool back to the consumer."""

from __future__ import annotations

import enum
import reprlib
from typing import TYPE_CHECKING

from attrs import field
from attrs import frozen

from celeriac._model.request import TaskRequest

if TYPE_CHECKING:
    from celeriac._contract.protocols import PendingWrite


class Disposition(enum.Enum):
    """What the consumer does with the message once the request is done."""

    #: Remove the message: the task finished (in any final state) or was retried as a new message.
    ACK = "ack"
    #: Give the message back to its queue for another delivery.
    REQUEUE = "requeue"
    #: Move the message to the dead-letter store with the outcome's reason.
    DEAD_LETTER = "dead_letter"


@frozen(kw_only=True)
class Outcome:
    """The result of running (or refusing to run) one request.

    :param state: the task state recorded (SUCCESS, FAILURE, RETRY, REVOKED ...).
    :param runtime: seconds spent in the task function.
    :param reason: why, when the state is not SUCCESS; shown in logs and dead letters.
    """

    request: TaskRequest
    state: str
    disposition: Disposition = Disposition.ACK
    runtime: float = 0.0
    reason: str | None = None
    #: The worker's traceback of a failure or retry, for events and logs.
    traceback: str | None = None
    #: A short repr of the return value, for ``task-succeeded`` events (when the executor
    #: describes results: a worker started with events on).
    result: str | None = None
    #: The final record, still being written by a :class:`~celeriac.plugin.DeferredStore`:
    #: the worker waits for it before it settles the message. It stays in this process.
    written: PendingWrite | None = field(default=None, eq=False, repr=False)


#: The longest repr of a result put in an event, as Celery's ``resultrepr_maxsize``.
RESULT_REPR_MAX = 1024
_PLAIN = (type(None), bool, int, float)


def describe(value: object) -> str:
    """A repr of ``value`` at most :data:`RESULT_REPR_MAX` characters long, built without
    formatting more than that of a large container (``reprlib``)."""
    if type(value) in _PLAIN:
        return repr(value)
    limited = reprlib.Repr()
    limited.maxlevel = 3
    limited.maxdict = limited.maxlist = limited.maxtuple = limited.maxset = 20
    limited.maxstring = limited.maxother = RESULT_REPR_MAX
    text = limited.repr(value)
    return text if len(text) <= RESULT_REPR_MAX else text[: RESULT_REPR_MAX - 3] + "..."
