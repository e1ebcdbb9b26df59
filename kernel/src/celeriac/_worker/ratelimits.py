"""The rate limits one worker applies: a token bucket per task, and the shared limits
booked in a store every worker sees (``global_rate_limit``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celeriac._model.ratelimit import TokenBucket
from celeriac._model.ratelimit import parse_rate

if TYPE_CHECKING:
    from celeriac._client.task_options import TaskOptions
    from celeriac._contract.protocols import SharedRateLimiter

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
