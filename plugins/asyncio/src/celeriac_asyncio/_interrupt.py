"""Time limits for coroutines: cancellation, delivered as the exception the task expects.

``asyncio.Task.cancel`` can only raise :class:`asyncio.CancelledError` at the coroutine's
current ``await``. :class:`Interruptible` sits between the pool's runner and the task's
coroutine, forwarding every step as ``yield from`` does; when the cancellation was a soft
time limit, it throws :class:`SoftTimeLimitExceededError` into the coroutine instead and
withdraws the cancellation (``Task.uncancel``), so the task can catch it, clean up, and even
``await`` while doing so. A hard time limit is passed through as a plain cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from collections.abc import Generator
from typing import Any
from typing import Generic
from typing import TypeVar

from celeriac.plugin import SoftTimeLimitExceededError

T = TypeVar("T")


class Limits:
    """The state of one run's time limits, shared by the timers and :class:`Interruptible`."""

    __slots__ = ("abandoned", "hard", "hard_fired", "soft", "soft_fired")

    def __init__(self, hard: float | None, soft: float | None) -> None:
        self.hard = hard
        self.soft = soft
        self.soft_fired = False
        self.hard_fired = False
        #: Cancelled by a cold shutdown: nothing is recorded, the message goes back.
        self.abandoned = False


class Interruptible(Generic[T]):
    """Await ``coro``, turning the soft-limit cancellation into SoftTimeLimitExceededError."""

    def __init__(self, coro: Coroutine[Any, Any, T], limits: Limits) -> None:
        self._coro = coro
        self._limits = limits
        self._converted = False

    def __await__(self) -> Generator[Any, Any, T]:
        coro = self._coro
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            try:
                step = coro.throw(to_throw) if to_throw is not None else coro.send(to_send)
            except StopIteration as stop:
                result: T = stop.value
                return result
            to_send, to_throw = None, None
            try:
                to_send = yield step
            except asyncio.CancelledError as exc:
                to_throw = self._translate(exc)
            except BaseException as exc:  # anything else thrown in is the coroutine's to handle
                to_throw = exc

    def _translate(self, exc: asyncio.CancelledError) -> BaseException:
        limits = self._limits
        if limits.soft_fired and not self._converted and not limits.hard_fired and not limits.abandoned:
            self._converted = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # withdrawn: the task may go on awaiting while it cleans up
            return SoftTimeLimitExceededError(f"soft time limit ({limits.soft:g} s) exceeded")
        return exc
