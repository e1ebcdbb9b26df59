"""celeriac-prefork: run task requests in child processes forked from the worker.

``worker.pool = "prefork"`` (or ``-P prefork``). Settings live in ``[prefork]``
(:class:`PreforkConfig`); see ``docs/pools.md`` for the fork model and the limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from celeriac.plugin import ConfigSection
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import hookimpl
from celeriac_prefork._config import Bounds
from celeriac_prefork._config import PreforkConfig
from celeriac_prefork._pool import PreforkPool

__all__ = [
    "Bounds",
    "PreforkConfig",
    "PreforkPool",
    "celeriac_add_config_sections",
    "celeriac_add_pools",
]


def _make_pool(context: PoolContext) -> PreforkPool:
    config = context.config
    return PreforkPool(
        context.executor,
        concurrency=context.concurrency,
        settings=config.section("prefork", PreforkConfig),
        app=context.app,
        revoked=context.revoked,
        loglevel=config.worker.loglevel,
        describe_results=context.executor.describe_results,
    )


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="prefork", cls=PreforkConfig, description="prefork pool settings")]


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    return [
        PoolSpec(
            name="prefork",
            factory=_make_pool,
            description="child processes with time and memory limits",
        )
    ]
