"""Key names of the streams layout.

Every key of one queue carries the queue name as a hash tag, ``<prefix>{<queue>}:...``, so
that on Redis Cluster all of a queue's keys live in one slot and one Lua script may touch
them together. Keys shared by all queues (the registry of queue names) are single-key.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen


def band_of(priority: int, steps: Sequence[int]) -> int:
    """Index in ``steps`` (ascending) of the band of ``priority``: the largest step not above it."""
    level = min(max(int(priority), 0), 9)
    band = 0
    for index, step in enumerate(steps):
        if step <= level:
            band = index
    return band


@frozen
class QueueKeys:
    """The keys of one queue: a stream per priority band, the delayed set, the dead letters."""

    queue: str
    bands: tuple[str, ...]  # ascending priority: bands[-1] is served first
    delayed: str
    dead: str
    wake: str

    @classmethod
    def build(cls, prefix: str, queue: str, steps: Sequence[int]) -> QueueKeys:
        base = f"{prefix}{{{queue}}}"
        return cls(
            queue=queue,
            bands=tuple(f"{base}:{step}" for step in steps),
            delayed=f"{base}:delayed",
            dead=f"{base}:dead",
            wake=f"{base}:wake",
        )

    @property
    def all(self) -> tuple[str, ...]:
        """Every key, in the order the scripts expect: bands ascending, delayed, dead, wake."""
        return (*self.bands, self.delayed, self.dead, self.wake)
