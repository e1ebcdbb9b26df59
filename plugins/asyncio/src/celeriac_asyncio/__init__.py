"""celeriac-asyncio: run ``async def`` tasks natively, many at once, on one event loop.

``worker.pool = "asyncio"`` (or ``-P asyncio -c 1000``). Plain ``def`` tasks of the same
app run on ``[asyncio] sync_threads`` threads. See ``docs/pools.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from celeriac.plugin import ConfigSection
from celeriac.plugin import PoolContext
from celeriac.plugin import PoolSpec
from celeriac.plugin import hookimpl
from celeriac_asyncio._config import AsyncioConfig
from celeriac_asyncio._pool import AsyncioPool

__all__ = ["AsyncioConfig", "AsyncioPool", "celeriac_add_config_sections", "celeriac_add_pools"]


def _make_pool(context: PoolContext) -> AsyncioPool:
    return AsyncioPool(
        context.executor,
        concurrency=context.concurrency,
        settings=context.config.section("asyncio", AsyncioConfig),
    )


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="asyncio", cls=AsyncioConfig, description="asyncio pool settings")]


@hookimpl
def celeriac_add_pools() -> Sequence[PoolSpec]:
    return [
        PoolSpec(
            name="asyncio",
            factory=_make_pool,
            description="async def tasks on one event loop; plain tasks on threads",
        )
    ]
