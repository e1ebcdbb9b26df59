"""The one rule of :meth:`PendingWrite.finished`, for the stores and pools that implement it."""

from __future__ import annotations

import threading
import time


def finished_by(done: threading.Event, deadline: float, timeout: float = 0.0) -> bool:
    """``PendingWrite.finished`` for a write whose end sets ``done`` and whose time limit ends
    at ``deadline`` (``time.monotonic()``): True once either happened, waiting up to
    ``timeout`` seconds for that; True too when the deadline passes during the wait, since
    ``wait()`` would not block then."""
    if done.is_set():
        return True
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return True
    if timeout <= 0:
        return False
    return done.wait(min(timeout, remaining)) or time.monotonic() >= deadline
