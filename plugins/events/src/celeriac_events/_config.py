"""The ``[events]`` configuration section."""

from __future__ import annotations

import logging

from attrs import field
from attrs import frozen
from attrs import validators

#: The plugin's TOML table, named after its entry point.
SECTION = "events"
#: Names ``[events] sinks`` may list; sinks of other plugins come through their own hooks.
SINK_NAMES = frozenset({"broker", "jsonl", "log"})
_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _known_sinks(_: object, __: object, value: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - SINK_NAMES)
    if unknown:
        raise ValueError(f"unknown sink {', '.join(unknown)} (choose from {', '.join(sorted(SINK_NAMES))})")


def _known_level(_: object, __: object, value: str) -> None:
    if value.upper() not in _LEVELS:
        raise ValueError(f"unknown log level {value!r} (choose from {', '.join(_LEVELS)})")


@frozen(kw_only=True)
class EventsConfig:
    """``[events]``: where a worker's monitoring events go once events are on (``-E``).

    :param sinks: the built-in sinks to use: ``broker`` (fan-out on the ``celeryev``
        channel of the broker, what ``celeriac events`` and monitors read), ``jsonl``
        (a JSON-lines file) and ``log`` (the ``celeriac.events`` logger).
    :param file: the file the ``jsonl`` sink appends to.
    :param log_level: the level the ``log`` sink logs at.
    :param batch_interval: seconds between two flushes of the broker and jsonl sinks; a
        flush also happens as soon as 100 events are waiting.
    :param max_buffer: events held between two flushes; past it the oldest are dropped
        (and the drop logged), so a slow broker never slows or blocks the worker.
    :param task_send_sent_event: apps send a ``task-sent`` event for every task they
        publish (Celery's setting of the same name), on the broker's ``celeryev`` channel.
    """

    sinks: tuple[str, ...] = field(default=("broker",), validator=_known_sinks)
    file: str = "celeriac-events.jsonl"
    log_level: str = field(default="INFO", validator=_known_level)
    batch_interval: float = field(default=0.5, validator=validators.gt(0))
    max_buffer: int = field(default=10_000, validator=validators.gt(0))
    task_send_sent_event: bool = field(default=False, validator=validators.instance_of(bool))

    @property
    def level(self) -> int:
        """``log_level`` as a :mod:`logging` level number."""
        return logging.getLevelNamesMapping()[self.log_level.upper()]
