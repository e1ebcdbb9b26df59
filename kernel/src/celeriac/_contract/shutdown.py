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

    def request(self, *, cold: bool = False, exit_code: int = 0) -> None:
        self.cold = self.cold or cold
        self.exit_code = self.exit_code or exit_code
        self.requested.set()
