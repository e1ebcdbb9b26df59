"""The ``[prefork]`` configuration section."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from celeriac.plugin import ConfigError


@frozen(kw_only=True)
class PreforkConfig:
    """``[prefork]``: child process recycling and autoscaling.

    :param max_tasks_per_child: a child that has run this many tasks is replaced after the
        last one finishes; 0 never replaces it (Celery's ``worker_max_tasks_per_child``).
    :param max_memory_per_child: a child whose resident memory exceeds this many KiB after
        a task is replaced; 0 means no limit (Celery's ``worker_max_memory_per_child``).
    :param autoscale: ``"MAX,MIN"`` runs between MIN and MAX children following the load
        (requests waiting for a free child); empty runs ``worker.concurrency`` children.
    :param autoscale_keepalive: seconds a child above MIN stays idle before it is retired.
    :param start_method: where children are forked from (see ``docs/pools.md``):
        ``forkserver``, a fresh interpreter that imports the app by the import path the CLI
        loaded it from; ``fork``, a copy of the worker made at pool start; ``auto`` picks
        forkserver when the app has an import path, fork otherwise.
    """

    max_tasks_per_child: int = 0
    max_memory_per_child: int = 0
    autoscale: str = ""
    autoscale_keepalive: float = 30.0
    start_method: Literal["auto", "forkserver", "fork"] = "auto"


@frozen(kw_only=True)
class Bounds:
    """How many children to run: ``minimum`` at rest, up to ``maximum`` under load."""

    minimum: int
    maximum: int

    @property
    def autoscaling(self) -> bool:
        return self.minimum != self.maximum


def bounds(settings: PreforkConfig, concurrency: int) -> Bounds:
    """The bounds from ``autoscale`` or, when it is empty, a fixed ``concurrency``."""
    text = settings.autoscale.strip()
    if not text:
        return Bounds(minimum=max(1, concurrency), maximum=max(1, concurrency))
    parts = [part.strip() for part in text.split(",")]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or any(n < 0 for n in numbers) or numbers[0] < 1:
        raise ConfigError(
            f"[prefork] autoscale = {settings.autoscale!r}: expected 'MAX,MIN' "
            "(for example '10,3'), MAX at least 1 and MIN at least 0"
        )
    maximum = numbers[0]
    minimum = numbers[1] if len(numbers) == 2 else 0
    if minimum > maximum:
        raise ConfigError(
            f"[prefork] autoscale = {settings.autoscale!r}: MIN {minimum} is above MAX {maximum}"
        )
    return Bounds(minimum=minimum, maximum=maximum)
