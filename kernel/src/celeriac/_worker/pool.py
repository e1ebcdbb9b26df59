"""The execution pool chosen by ``worker.pool``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._client.execution import Executor
from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config
from celeriac._worker.keys import POOL
from celeriac._worker.keys import REVOKED


@frozen
class PoolStep:
    name: ClassVar[str] = "kernel.pool"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.result_store", "kernel.state"})

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        spec = ctx.app.plugins.pool(ctx.config.worker.pool)
        revoked = ctx.require(REVOKED)
        execute = Executor(ctx.app, revoked=revoked, describe_results=ctx.config.worker.send_events)
        pool = spec.factory(ctx.config, execute)
        pool.start()
        ctx.provide(POOL, pool)
        try:
            yield
        finally:
            pool.stop(wait=not ctx.shutdown.cold)
