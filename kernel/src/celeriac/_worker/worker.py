"""The worker process: runs the bootstep graph until told to stop.

The first SIGTERM or SIGINT starts a warm shutdown (stop fetching, requeue what has not
started, let running tasks finish and acknowledge them); a second one makes it cold
(requeue everything unfinished and exit now).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve

from celeriac._contract.bootsteps import Blueprint
from celeriac._contract.shutdown import ShutdownState
from celeriac._model.config import Config
from celeriac._worker.broker_wait import wait_for_broker
from celeriac._worker.keys import CONSUMER
from celeriac._worker.steps import kernel_steps

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._worker.activity import Activity
    from celeriac._worker.consumer import Consumer

log = logging.getLogger("celeriac.worker")


class Worker:
    """Consumes the configured queues and executes tasks of ``app``.

    :param overrides: ``[worker]`` keys set by the CLI (``concurrency``, ``pool``, ``queues`` ...).
    """

    def __init__(self, app: Celeriac, **overrides: Any) -> None:
        self.app = app
        given = {key: value for key, value in overrides.items() if value is not None}
        worker_config = evolve(app.config.worker, **given)
        if worker_config.concurrency <= 0:
            worker_config = evolve(worker_config, concurrency=os.cpu_count() or 1)
        provenance = dict(app.config.provenance)
        provenance.update({f"worker.{key}": "flag" for key in given})
        self.config: Config = evolve(app.config, worker=worker_config, provenance=provenance)
        self.hostname = worker_config.hostname or f"celeriac@{socket.gethostname()}"
        self.shutdown = ShutdownState(worker_config.shutdown_timeout)
        self._signals = 0
        self._consumer: Consumer | None = None
        self._started = threading.Event()

    def blueprint(self) -> Blueprint:
        return Blueprint(self.app.plugins.bootsteps(self.config, kernel_steps()), self.config)

    def run(self) -> int:
        """Start every step, wait for a shutdown request, stop every step; returns the exit code."""
        blueprint = self.blueprint()
        self.app.set_default()  # the app @shared_task tasks resolve to in this process
        self.app.plugins.lifecycle.worker_init(self)
        self._warn_unknown_task_sections()
        # Asking signal.signal, not comparing current_thread() with main_thread(): under
        # eventlet's patching the two differ even on the main thread.
        with contextlib.suppress(ValueError):  # not the main thread: whoever runs us stops us
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        if not wait_for_broker(
            self.app.transport, self.queues, self.config.broker, self.config.worker, self.shutdown
        ):
            log.info("%s stopped before its broker answered", self.hostname)
            return self.shutdown.exit_code
        # The app's connections stay open: whoever owns the app closes it (the CLI does).
        with blueprint.start(
            self.app, self.config, hostname=self.hostname, shutdown=self.shutdown
        ) as registry:
            consumer = registry.lookup(CONSUMER)
            self._consumer = consumer[0] if consumer is not None else None
            self._started.set()
            self.app.plugins.lifecycle.worker_ready(self)
            log.info("%s ready: consuming %s", self.hostname, ", ".join(self.queues))
            self.shutdown.requested.wait()
            # Stop fetching and give reserved messages back now, before the other steps'
            # teardown (which runs first, in reverse order) gives a running task time to
            # finish and its pool time to start a reserved one.
            if self._consumer is not None:
                self._consumer.stop()
            log.info("%s shutting down (%s)", self.hostname, "cold" if self.shutdown.cold else "warm")
            self.app.plugins.lifecycle.worker_shutdown(self)
        log.info("%s stopped", self.hostname)
        return self.shutdown.exit_code

    def _warn_unknown_task_sections(self) -> None:
        """A ``[tasks."name"]`` for no task of this worker is most likely a typo: it would do nothing."""
        for name in sorted(set(self.config.tasks) - set(self.app.tasks)):
            log.warning(
                '[tasks."%s"] in the configuration names no task this worker knows: its options '
                "apply to nothing (a typo? the task's module not imported?)",
                name,
            )

    def wait_started(self, timeout: float) -> bool:
        """Wait until every step started and the consumer runs; False if ``timeout`` passed."""
        return self._started.wait(timeout)

    def activity(self) -> Activity | None:
        """The consumer's counters now (see :class:`Activity`); None before it started."""
        return None if self._consumer is None else self._consumer.activity()

    def wait_round(self, after: int, timeout: float) -> bool:
        """Wait until the consumer completes a fetch round after round ``after``."""
        return self._consumer is not None and self._consumer.wait_round(after, timeout)

    def stop(self, *, cold: bool = False) -> None:
        """Ask the worker to shut down, from any thread."""
        self.shutdown.request(cold=cold)

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self.config.worker.queues) or (self.config.default_queue,)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        cold = self._signals > 1
        log.warning(
            "received %s: %s",
            signal.Signals(signum).name,
            "cold shutdown, requeueing unfinished tasks"
            if cold
            else "warm shutdown, finishing running tasks (again for cold)",
        )
        self.shutdown.request(cold=cold)
