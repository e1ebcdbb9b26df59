"""The execution pool chosen by ``worker.pool``, built from a typed :class:`PoolContext`."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import ClassVar
from typing import cast

from attrs import frozen

from celeriac._client.execution import Executor
from celeriac._client.pools import PoolContext
from celeriac._contract.bootsteps import StepContext
from celeriac._contract.protocols import Pool
from celeriac._contract.specs import PoolSpec
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
        # The settler waits for deferred writes (Outcome.written) before acknowledging.
        executor = Executor(
            ctx.app, revoked=revoked, describe_results=ctx.config.worker.send_events, defer_writes=True
        )
        context = PoolContext(
            config=ctx.config,
            app=ctx.app,
            executor=executor,
            revoked=revoked,
            hooks=ctx.app.plugins.lifecycle,
        )
        pool = build_pool(spec, context)
        pool.start()
        ctx.provide(POOL, pool)
        try:
            yield
        finally:
            pool.stop(wait=not ctx.shutdown.cold)


def build_pool(spec: PoolSpec, context: PoolContext) -> Pool:
    """Call the spec's factory with the context; a factory of API 1.0, taking ``(config,
    execute)``, is called that way with a DeprecationWarning."""
    if _takes_two(spec.factory):
        warnings.warn(
            f"the pool {spec.name!r}: a factory taking (config, execute) is deprecated; "
            "take one celeriac.plugin.PoolContext (plugin API 1.1)",
            DeprecationWarning,
            stacklevel=2,
        )
        legacy = cast("Callable[[Config, Executor], Pool]", spec.factory)
        return legacy(context.config, context.executor)
    return cast("Callable[[PoolContext], Pool]", spec.factory)(context)


def _takes_two(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the current form
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty
