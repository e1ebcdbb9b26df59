"""The rate limits one worker applies: a token bucket per task, and the shared limits
booked in a store every worker sees (``global_rate_limit``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac._contract.protocols import SharedRateLimiter
from celeriac._model.errors import ConfigError
from celeriac._model.ratelimit import TokenBucket
from celeriac._model.ratelimit import parse_rate

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task_options import TaskOptions

log = logging.getLogger("celeriac.worker")


#: When the shared store cannot be reached, a request comes back after this many seconds:
#: the limit cannot be checked, and running anyway could break it.
SHARED_UNREACHABLE_DELAY = 2.0


class RateLimits:
    """The rate limits one worker applies, by task name.

    :param shared: the store shared limits are booked in; None when neither the broker nor
        the result store can (a task with ``global_rate_limit`` is then refused at start).
    :param hold_limit: the longest wait booked; a longer one books nothing.
    """

    def __init__(self, shared: SharedRateLimiter | None, hold_limit: float) -> None:
        self.shared = shared
        self.hold_limit = hold_limit
        self._buckets: dict[str, TokenBucket | None] = {}
        self._changed: set[str] = set()  # tasks whose limit was changed by remote control

    @classmethod
    def for_worker(cls, app: Celeriac, stores: Sequence[object], hold_limit: float) -> RateLimits:
        """The limits of a worker whose shared limits are booked in the first of ``stores``
        (the transport, the result store) that can; refuses to start when a task has a
        shared limit and none can."""
        shared = next((store for store in stores if isinstance(store, SharedRateLimiter)), None)
        check_shared_limits(app, shared)
        return cls(shared, hold_limit)

    def applies(self, name: str, options: TaskOptions) -> bool:
        """Does a limit apply to task ``name``? (Checked before :meth:`reserve`, which books.)"""
        return bool(options.rate_limit or options.global_rate_limit or name in self._changed)

    def change(self, name: str, rate_limit: str | None) -> None:
        """Replace a task's per-worker limit by remote control (``None`` or ``"0"`` removes it)."""
        self.set_local(name, rate_limit)
        self._changed.add(name)

    def set_local(self, name: str, rate_limit: str | None) -> None:
        """Replace a task's per-worker limit (``None`` or ``"0"`` removes it)."""
        rate = parse_rate(rate_limit) if rate_limit else 0.0
        self._buckets[name] = TokenBucket(rate) if rate > 0 else None

    def reserve(self, name: str, options: TaskOptions) -> float:
        """Seconds until a request of task ``name`` may run (0: now), its slot booked; when
        that is more than ``hold_limit``, nothing stays booked and the request should go
        back to the broker delayed by that long."""
        if name not in self._buckets:
            self.set_local(name, options.rate_limit)
        bucket = self._buckets[name]
        local = bucket.reserve() if bucket is not None else 0.0
        if local > self.hold_limit:
            assert bucket is not None
            bucket.refund()
            return local
        shared = self._reserve_shared(name, options.global_rate_limit)
        if shared > self.hold_limit and bucket is not None:
            bucket.refund()
        return max(local, shared)

    def _reserve_shared(self, name: str, limit: str | None) -> float:
        if not limit or self.shared is None:
            return 0.0
        rate = parse_rate(limit)
        if rate <= 0:
            return 0.0
        try:
            return self.shared.reserve_slot(name, 1.0 / rate, self.hold_limit)
        except Exception:
            log.exception("the shared rate limit of %s could not be checked; trying again later", name)
            return SHARED_UNREACHABLE_DELAY + self.hold_limit


def check_shared_limits(app: Celeriac, shared: SharedRateLimiter | None) -> None:
    """A task with a shared limit needs a store to share it in: refuse to start without one."""
    if shared is not None:
        return
    for name, task in app.tasks.items():
        if task.options.global_rate_limit:
            raise ConfigError(
                f"task {name!r} has global_rate_limit = {task.options.global_rate_limit!r}, but neither "
                f"the broker nor the result store can share a rate limit between workers (Redis and "
                f"SQLite can); remove it or use rate_limit, which is per worker"
            )
