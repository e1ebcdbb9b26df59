"""Rate limits: ``"10/s"``, ``"100/m"``, ``"1000/h"``, or a number per second.

A limit delays tasks, never drops them: a worker holds a rate-limited request until its
slot comes, while renewing the message's lease, or hands it back to the broker delayed when
the slot is far off. ``rate_limit`` is per worker (a token bucket here); ``global_rate_limit``
is shared by every worker through a store that can book slots (a
:class:`~celeriac._contract.protocols.SharedRateLimiter`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celeriac._client.task import TaskOptions
    from celeriac._contract.protocols import SharedRateLimiter

log = logging.getLogger("celeriac.worker")

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*$")


def parse_rate(text: str | float | int) -> float:
    """Tokens per second for a rate string; 0 means no limit.

    :raises ValueError: naming the text and the accepted forms.
    """
    if isinstance(text, int | float):
        rate = float(text)
    else:
        match = _PATTERN.match(text)
        if match is None:
            raise ValueError(f"rate limit {text!r} is not of the form N/s, N/m, N/h or N (per second)")
        rate = float(match.group(1)) / _UNITS[match.group(2) or "s"]
    if rate < 0:
        raise ValueError(f"rate limit {text!r} is negative")
    return rate


class TokenBucket:
    """A bucket holding at most ``capacity`` tokens, refilled at ``rate`` tokens per second.

    :meth:`reserve` takes a token now or books the next free one, so concurrent callers are
    spaced out instead of all waking at once.
    """

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; returns the seconds to wait before using it (0 when available now)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self) -> None:
        """Give back a reserved token (the request was handed back to the broker instead)."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1.0)


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
