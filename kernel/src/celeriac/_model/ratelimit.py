"""Rate limits: ``"10/s"``, ``"100/m"``, ``"1000/h"``, or a number per second.

A limit delays tasks, never drops them: a worker holds a rate-limited request until its
slot comes, while renewing the message's lease, or hands it back to the broker delayed when
the slot is far off. ``rate_limit`` is per worker (a token bucket here); ``global_rate_limit``
is shared by every worker through a store that can book slots (a
:class:`~celeriac._contract.protocols.SharedRateLimiter`).
"""

from __future__ import annotations

import re
import threading
import time

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
