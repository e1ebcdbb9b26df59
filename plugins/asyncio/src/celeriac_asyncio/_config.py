"""The ``[asyncio]`` configuration section."""

from __future__ import annotations

from attrs import frozen


@frozen(kw_only=True)
class AsyncioConfig:
    """``[asyncio]``: the threads beside the event loop.

    :param sync_threads: threads that run the app's plain (``def``) tasks, and the blocking
        bookkeeping of ``async def`` ones (storing results, hooks). ``worker.concurrency``
        bounds the coroutines in flight; this bounds the plain tasks running at once.
    """

    sync_threads: int = 8
