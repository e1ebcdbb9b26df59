"""Counting starts, not deliveries, to find a task that kills its worker.

A broker's delivery count cannot find such a task everywhere: RabbitMQ's classic queues
only say "redelivered", and where a count exists (quorum queues, the Redis layouts) it also
counts the messages that were merely prefetched when the worker died. So the worker records
each start of a late-acknowledged task in a :class:`~celeriac._contract.protocols.StartLedger`
(the transport's, else the result store's) before it runs, and reads the count when the
message is delivered again. Without a ledger, the broker's delivery count decides.
"""

from __future__ import annotations

import logging

from celeriac._contract.protocols import ResultStore
from celeriac._contract.protocols import StartLedger
from celeriac._contract.protocols import Transport
from celeriac._model.message import TaskMessage
from celeriac._model.records import Delivery

log = logging.getLogger("celeriac.worker")


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

    def before(self, delivery: Delivery, message: TaskMessage) -> int:
        """How often the message was started before this delivery (a first delivery: none)."""
        if self.ledger is None or not delivery.redelivered:
            return 0
        return self.ledger.starts(ledger_key(message))

    def record(self, message: TaskMessage) -> None:
        """Count a start; a failure to count is logged and the task runs (at-least-once)."""
        if self.ledger is None:
            return
        try:
            self.ledger.record_start(ledger_key(message))
        except Exception as exc:
            log.warning("could not count the start of %s[%s]: %s", message.task, message.id, exc)
