"""A task request: a decoded message on its way through a worker."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from celeriac._model.message import TaskMessage


@frozen(kw_only=True)
class TaskRequest:
    """What a pool needs to run one task; picklable, so it can cross to a child process.

    :param delivery_count: how often the message was delivered, this time included.
    """

    message: TaskMessage
    queue: str
    delivery_count: int = 1
    hostname: str = ""
    #: The worker's local number for this delivery; a retried task can be in flight twice.
    token: int = 0
    #: Run in the caller's thread (eager mode): a retry runs again here instead of publishing.
    eager: bool = False

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def task(self) -> str:
        return self.message.task

    @property
    def args(self) -> tuple[Any, ...]:
        return self.message.args

    @property
    def kwargs(self) -> Any:
        return self.message.kwargs

    @property
    def retries(self) -> int:
        return self.message.retries
