"""Counting starts, not deliveries, to find a task that kills its worker.

A broker's delivery count cannot find such a task everywhere: RabbitMQ's classic queues
only say "redelivered", and where a count exists (quorum queues, the Redis layouts) it also
counts the messages that were merely prefetched when the worker died. So the worker records
starts of late-acknowledged tasks in a :class:`~celeriac._contract.protocols.StartLedger`
(the transport's, else the result store's) before they run, and reads the count when the
message is delivered again. Without a ledger, the broker's delivery count decides.

Only the starts of a message delivered again are written: the first delivery's start is
assumed rather than recorded, so a task that runs once costs the ledger nothing (no write
per task on the hot path, no key left behind per task). A redelivered message counts as
started once before, plus the starts recorded since; it is a suspect (run one at a time)
once a recorded start did not finish. A task whose start was recorded and that finishes
has its starts forgotten before its message is acknowledged: if the worker dies in between,
the message comes back as a first redelivery, not as a poison's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from attrs import frozen

from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import StartLedger
from celeriac._contract.protocols import Transport
from celeriac._model.message import TaskMessage
from celeriac._model.records import Delivery

log = logging.getLogger("celeriac.worker")


@frozen
class PriorStarts:
    """Starts of a message's task before this delivery.

    :param count: the starts believed: the first delivery's (assumed) plus those recorded.
    :param recorded: the starts written in the ledger, each of a redelivery that never finished.
    """

    count: int
    recorded: int

    @property
    def suspect(self) -> bool:
        """A recorded start did not finish: run it alone, so it takes nothing down with it."""
        return self.recorded > 0


def ledger_key(message: TaskMessage) -> str:
    """One message: a retry is a new message with the same task id."""
    return f"{message.id}:{message.retries}"


class StartCounts:
    """The worker's view of the ledger it found, if any."""

    def __init__(self, transport: Transport, store: ResultStore | None) -> None:
        ledger: StartLedger | None = None
        if isinstance(transport, StartLedger):
            ledger = transport
        elif store is not None and isinstance(store, StartLedger):
            ledger = store
        self.ledger = ledger

    @property
    def counted(self) -> bool:
        return self.ledger is not None

    def before(self, delivery: Delivery, message: TaskMessage) -> PriorStarts:
        """How often the message was started before this delivery (a first delivery: none)."""
        if self.ledger is None or not delivery.redelivered:
            return PriorStarts(count=0, recorded=0)
        recorded = self.ledger.starts(ledger_key(message))
        return PriorStarts(count=1 + recorded, recorded=recorded)

    def forget(self, message: TaskMessage) -> None:
        """Forget the recorded starts of a task that finished; a failure is logged (the
        message, should it come back, then counts as started that often)."""
        self._call(message, "forget the starts of", lambda ledger, key: ledger.forget_starts(key))

    def record(self, message: TaskMessage) -> None:
        """Count a start; a failure to count is logged and the task runs (at-least-once)."""
        self._call(message, "count the start of", lambda ledger, key: ledger.record_start(key))

    def _call(self, message: TaskMessage, doing: str, act: Callable[[StartLedger, str], object]) -> None:
        """``act`` on the ledger with ``message``'s key, if there is a ledger; log a failure."""
        if self.ledger is None:
            return
        try:
            act(self.ledger, ledger_key(message))
        except Exception as exc:
            log.warning("could not %s %s[%s]: %s", doing, message.task, message.id, exc)
