"""Tasks: a function registered with an app, callable locally or through the queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Generic
from typing import NoReturn
from typing import ParamSpec
from typing import TypeVar

from attrs import evolve

from celeriac._client.call_options import refuse
from celeriac._client.canvas import Signature
from celeriac._client.canvas_build import chunks
from celeriac._client.canvas_build import starmap
from celeriac._client.canvas_build import xmap
from celeriac._client.dispatch import replace
from celeriac._client.eager import apply_eagerly
from celeriac._client.execution import format_traceback
from celeriac._client.execution import result_record
from celeriac._client.publish import Outgoing
from celeriac._model import states
from celeriac._model.arguments import TaskArguments
from celeriac._model.errors import MaxRetriesExceededError
from celeriac._model.errors import Replaced
from celeriac._model.errors import Retry

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.canvas import Canvas
    from celeriac._client.canvas_build import Chunks
    from celeriac._client.eager import EagerResult
    from celeriac._client.result import ResultHandle
    from celeriac._client.task_options import TaskOptions
    from celeriac._model.request import TaskRequest

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A registered task. Call it to run it here; ``delay``/``apply_async`` to queue it."""

    def __init__(
        self, app: Celeriac, fn: Callable[..., R], *, name: str, bind: bool, options: TaskOptions
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.bind = bind
        self.options = options
        self.arguments = TaskArguments(fn, bind=bind)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def bound(self, request: TaskRequest) -> TaskCall:
        """What a bound task receives for ``request``: its ``.request``, ``.retry`` ..."""
        return TaskCall(self, request)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bind:
            return self.fn(TaskCall(self, None), *args, **kwargs)
        return self.fn(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> ResultHandle:
        """Queue the task with these arguments; the shortcut for ``apply_async(args, kwargs)``."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        expires: float | dt.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        headers: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        serializer: str | None = None,
        ignore_result: bool | None = None,
        exchange: str | None = None,
        routing_key: str | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        link: Signature | Sequence[Signature] | None = None,
        link_error: Signature | Sequence[Signature] | None = None,
        shadow: str | None = None,
        argsrepr: str | None = None,
        kwargsrepr: str | None = None,
        **refused: Any,
    ) -> ResultHandle:
        """Queue the task. Times: ``countdown`` seconds from now or an ``eta``; ``expires``
        in seconds or as a time, after which the task is revoked instead of run.
        ``exchange`` and ``routing_key`` route through a broker's exchange (RabbitMQ);
        brokers without exchanges use the queue (see docs/tasks.md, Routing).
        ``time_limit``/``soft_time_limit`` replace the task's for this call; ``link`` and
        ``link_error`` add callbacks; ``shadow`` names the call in logs; ``argsrepr`` and
        ``kwargsrepr`` stand for the arguments in logs and events. Celery's other options
        raise ``TypeError`` saying why (:mod:`celeriac._client.call_options`)."""
        if refused:
            raise refuse(self.name, refused)
        return self.app.send_task(
            self.name,
            args,
            kwargs,
            countdown=countdown,
            eta=eta,
            expires=expires,
            queue=queue,
            priority=priority,
            headers=headers,
            task_id=task_id,
            serializer=serializer,
            ignore_result=ignore_result,
            exchange=exchange,
            routing_key=routing_key,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            link=link,
            link_error=link_error,
            shadow=shadow,
            argsrepr=argsrepr,
            kwargsrepr=kwargsrepr,
        )

    def apply(
        self, args: tuple[Any, ...] | list[Any] | None = None, kwargs: Mapping[str, Any] | None = None
    ) -> EagerResult:
        """Run the task here and now, returning an already-finished result (eager mode)."""
        return apply_eagerly(self, tuple(args or ()), dict(kwargs or {}))

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of a call of this task, for chains, groups, chords and callbacks."""
        return Signature(task=self.name, args=args, kwargs=kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a chain does not pass it the previous result."""
        return self.s(*args, **kwargs).si()

    signature = s

    def map(self, items: Iterable[Any]) -> Signature:
        return xmap(self.s(), items)

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        return starmap(self.s(), items)

    def chunks(self, items: Iterable[Any], size: int) -> Chunks:
        return chunks(self.s(), items, size)

    def run(self, request: TaskRequest) -> R:
        """Run for a worker's request, passing the call context first when ``bind`` is set."""
        args, kwargs = self.arguments.structure(request.args, request.kwargs)
        if self.bind:
            return self.fn(TaskCall(self, request), *args, **kwargs)
        return self.fn(*args, **kwargs)


class TaskCall:
    """What a bound task receives as ``self``: the task, and the request being run.

    One per call rather than a thread-local ``task.request``, so nothing is shared between
    concurrent runs of the same task.
    """

    def __init__(self, task: Task[Any, Any], request: TaskRequest | None) -> None:
        self.task = task
        self.request = request
        self.app = task.app
        self.name = task.name

    @property
    def max_retries(self) -> int | None:
        return self.task.options.max_retries

    def update_state(self, state: str, meta: Any = None, *, task_id: str | None = None) -> None:
        """Record a custom state (``"PROGRESS"``) with ``meta``, readable from ``AsyncResult.info``."""
        target = task_id or (self.request.id if self.request is not None else None)
        if target is None:
            raise RuntimeError(f"{self.name}.update_state() needs a task id outside a worker")
        if self.request is not None and self.request.eager:
            return
        own = self.request is not None and target == self.request.id
        reply_to = self.request.message.reply_to if own and self.request is not None else None
        self.app.result_store.store(self.app.results.encode(target, state, meta, reply_to=reply_to))

    def retry(
        self,
        *,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        max_retries: int | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> Retry:
        """Queue this task again with ``retries + 1`` and end this run with :class:`Retry`.

        Use as ``raise self.retry(...)``. Raises :class:`MaxRetriesExceededError` (caused
        by ``exc``) when ``max_retries`` is reached. ``queue`` and ``priority`` change
        where the retry goes; by default it returns to the queue it came from.
        """
        if self.request is None:
            raise RuntimeError(f"{self.name}.retry() called outside a worker; nothing to retry")
        limit = max_retries if max_retries is not None else self.task.options.max_retries
        retries = self.request.retries
        if limit is not None and retries >= limit:
            detail = f": {exc!r}" if exc is not None else ""
            raise MaxRetriesExceededError(
                f"{self.name}[{self.request.id}] gave up after {retries} retries{detail}", exc
            ) from exc
        if countdown is None and eta is None:
            countdown = self.task.options.default_retry_delay
        if self.request.eager:
            raise Retry(exc=exc, when=countdown)
        # RETRY is stored before the new message goes out: stored after, it could overwrite the
        # final state of a rerun that was quicker than this run's bookkeeping.
        if self.app.result_store_url is not None and not self.request.message.ignore_result:
            trace = format_traceback(exc) if exc is not None else None
            record = result_record(
                self.app, self.request, states.RETRY, exc if exc is not None else Retry(), trace
            )
            self.app.result_store.store(record)
        message = evolve(
            self.request.message,
            retries=retries + 1,
            eta=eta if eta is not None else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=countdown or 0),
            priority=priority if priority is not None else self.request.message.priority,
        )
        self.app.publish(
            [
                Outgoing(
                    message=message,
                    route=queue or self.request.queue,
                    serializer=self.task.options.serializer,
                )
            ]
        )
        raise Retry(exc=exc, when=eta if eta is not None else countdown, recorded=True)

    def replace(self, sig: Canvas) -> NoReturn:
        """End this run and send ``sig`` in its place: the replacement takes this task's id
        (the caller's ``AsyncResult`` gets its result), its group and chord membership, its
        callbacks and the rest of its chain. A group's results are gathered into one list.

        Use as ``raise self.replace(sig)`` or just ``self.replace(sig)``.
        """
        if self.request is None or self.request.eager:
            raise RuntimeError(
                f"{self.name}.replace() needs a worker: the replacement is sent as a new message"
            )
        replace(self.app, self.request, sig)
        raise Replaced(f"{self.name}[{self.request.id}] replaced by {sig!r}")
