"""Eager mode: run a task in the calling thread, as ``task_always_eager`` or ``task.apply()`` do."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve

from celeriac._client.execution import Executor
from celeriac._model import states
from celeriac._model.errors import Retry
from celeriac._model.message import TaskMessage
from celeriac._model.request import TaskRequest

if TYPE_CHECKING:
    from celeriac._client.task import Task


class EagerResult:
    """A finished result held in memory; the same reading API as AsyncResult."""

    def __init__(self, task_id: str, state: str, value: Any, trace: str | None) -> None:
        self.id = task_id
        self.state = self.status = state
        self.result = self.info = value
        self.traceback = trace

    def __repr__(self) -> str:
        return f"<EagerResult {self.id} {self.state}>"

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        if propagate and isinstance(self.result, BaseException):
            raise self.result
        return self.result

    def forget(self) -> None:
        """Nothing is stored for an eager result."""

    @property
    def children(self) -> list[Any]:
        """Tasks an eager task sends are not tracked as its children."""
        return []

    def collect(self, timeout: float | None = None) -> Iterator[tuple[EagerResult, Any]]:
        """Just this result: an eager run has no tracked children."""
        yield self, self.get()


def apply_eagerly(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, task_id: str | None = None
) -> EagerResult:
    """Run ``task`` now; a retry runs it again at once, up to ``max_retries``.

    With ``task_eager_propagates`` an exception reaches the caller.
    """
    task_id = task_id or str(uuid.uuid4())
    message = TaskMessage(id=task_id, task=task.name, args=args, kwargs=kwargs, root_id=task_id)
    queue = task.options.queue or task.app.config.default_queue
    while True:
        request = TaskRequest(message=message, queue=queue, eager=True)
        try:
            try:
                value = task.run(request)
            except Exception as exc:
                if not Executor.autoretries(task, exc):
                    raise
                task.bound(request).retry(exc=exc)  # raises Retry, or MaxRetriesExceededError
        except Retry:
            message = evolve(message, retries=message.retries + 1)
            continue
        except Exception as exc:
            if task.app.config.task_eager_propagates:
                raise
            return EagerResult(task_id, states.FAILURE, exc, traceback.format_exc())
        return EagerResult(task_id, states.SUCCESS, value, None)
