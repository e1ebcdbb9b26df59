"""What became of one task request, reported by a pool back to the consumer."""

from __future__ import annotations

import enum

from attrs import frozen

from celeriac.request import TaskRequest


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
