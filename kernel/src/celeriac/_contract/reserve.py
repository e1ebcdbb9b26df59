"""Pools that choose how many messages a worker reserves beyond those running.

A worker holds at most its pool's ``limit`` plus ``worker.prefetch`` messages; with
``prefetch = 0`` (the default) that allowance is the pool's own ``limit``. A pool that can use
more (the prefork pool queues the requests of short tasks in its children) says so through
:class:`ReservingPool`; a ``prefetch`` set in the configuration still wins.
"""

from __future__ import annotations

from typing import Protocol
from typing import runtime_checkable


@runtime_checkable
class ReservingPool(Protocol):
    """A pool that says how many messages to reserve beyond those running."""

    @property
    def reserve(self) -> int:
        """Messages the worker may hold beyond what the pool runs; read at every fetch."""
