"""Embedded beat (``celeriac worker -B``): the scheduler on a thread of the worker.

Handy for development and small deployments. Several workers started with ``-B`` are safe
when the schedule store has a leader lock (SQLite, Redis): one of them sends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._beat.beat import Beat
from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config

#: Seconds teardown waits for the beat thread to give its lock up.
STOP_TIMEOUT = 10.0


@frozen
class BeatStep:
    """Runs :class:`~celeriac._beat.beat.Beat` while the worker runs; enabled by ``worker.beat`` (``-B``)."""

    name: ClassVar[str] = "kernel.beat"
    # After the connection: beat publishes through the app's transport, which must be up.
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection"})

    def enabled(self, config: Config) -> bool:
        return config.worker.beat

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        beat = Beat(ctx.app)
        beat.open()  # an invalid schedule stops the worker's start, with the entry named
        ctx.app.plugins.lifecycle.beat_init(ctx.app, beat)
        stop = threading.Event()
        thread = threading.Thread(target=beat.run, args=(stop,), name="celeriac-beat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=STOP_TIMEOUT)
