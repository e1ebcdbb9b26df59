"""``celeriac beat``: beat in the main thread, stopped by SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from celeriac._beat.beat import Beat

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.beat")


def run_beat(app: Celeriac, *, schedule_store: str | None = None, max_interval: float | None = None) -> int:
    """Run beat in this thread until SIGTERM or SIGINT (``celeriac beat``); SIGHUP reloads the
    schedule from the config file. Returns the exit code."""
    stop = threading.Event()
    beat = Beat(app, schedule_store=schedule_store, max_interval=max_interval)
    if threading.current_thread() is threading.main_thread():

        def on_stop(signum: int, frame: object) -> None:
            log.info("received %s: stopping beat", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda signum, frame: beat.request_reload())
    app.plugins.lifecycle.beat_init(app, beat)
    beat.run(stop)
    return 0
