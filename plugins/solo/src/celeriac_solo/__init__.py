"""celeriac-solo: run each request inline, one at a time, in the consumer's thread."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

from celeriac.plugin import Outcome
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import TaskRequest
from celeriac.plugin import hookimpl
from celeriac.plugin import run_safely

__all__ = ["SoloPool", "celeriac_add_pools"]


class SoloPool:
    """Executes in ``submit`` itself, so the consumer fetches the next message only afterwards."""

    def __init__(self, execute: Callable[[TaskRequest], Outcome]) -> None:
        self._execute = execute

    @property
    def limit(self) -> int:
        return 1

    def start(self) -> None:
        """Nothing to start: there are no threads of its own."""

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        on_start(request)
        on_done(run_safely(self._execute, request))

    def cancel_pending(self) -> list[TaskRequest]:
        return []

    def stop(self, *, wait: bool) -> None:
        """Nothing runs once ``submit`` has returned."""


def _make_pool(context: PoolContext) -> SoloPool:
    return SoloPool(context.executor)


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    return [PoolSpec(name="solo", factory=_make_pool, description="inline, one task at a time")]
