"""Shutdown state shared by the worker's signal handlers and its bootsteps."""

from __future__ import annotations

import threading


class ShutdownState:
    """Shared by the signal handlers and the steps: has a stop been asked for, and how hard."""

    def __init__(self, timeout: float | None) -> None:
        self.requested = threading.Event()
        self.cold = False
        self.timeout = timeout
        self.exit_code = 0
        #: Start again once stopped (``--autoreload`` saw the source change): the command line
        #: runs the same command anew, so every pool loads the new code.
        self.restart = False

    def request(self, *, cold: bool = False, exit_code: int = 0, restart: bool = False) -> None:
        self.restart = self.restart or restart
        self.cold = self.cold or cold
        self.exit_code = self.exit_code or exit_code
        self.requested.set()
