"""The consumer as a bootstep: its fetch loop on a thread of its own, its leases renewed by
the timer, and on the way out, stop, wait for the loop, drain."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._contract.shutdown import ShutdownState
from celeriac._model.config import Config
from celeriac._worker.consumer import Consumer
from celeriac._worker.keys import CONSUMER
from celeriac._worker.keys import EVENTS
from celeriac._worker.keys import POOL
from celeriac._worker.keys import REVOKED
from celeriac._worker.keys import TIMER
from celeriac._worker.keys import TRANSPORT

log = logging.getLogger("celeriac.worker")


@frozen
class ConsumerStep:
    name: ClassVar[str] = "kernel.consumer"
    requires: ClassVar[frozenset[str]] = frozenset(
        {
            "kernel.connection",
            "kernel.result_store",
            "kernel.pool",
            "kernel.timer",
            "kernel.events",
            "kernel.state",
        }
    )

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        consumer = Consumer(
            ctx.app,
            ctx.config,
            ctx.require(TRANSPORT),
            ctx.require(POOL),
            ctx.require(EVENTS),
            hostname=ctx.hostname,
            timer=ctx.require(TIMER),
            revoked=ctx.require(REVOKED),
        )
        shutdown = ctx.shutdown
        ctx.require(TIMER).call_every(max(ctx.config.visibility_timeout / 3, 0.05), consumer.renew_leases)

        def loop() -> None:
            try:
                consumer.run()
            except BaseException:
                log.critical("consumer stopped by an unexpected error; shutting down", exc_info=True)
                shutdown.request(cold=False, exit_code=1)

        thread = threading.Thread(target=loop, name="celeriac-consumer", daemon=True)
        thread.start()
        ctx.provide(CONSUMER, consumer)
        try:
            yield
        finally:
            consumer.stop()
            _join_unless_cold(thread, shutdown)
            consumer.drain(shutdown)


def _join_unless_cold(thread: threading.Thread, shutdown: ShutdownState) -> None:
    """Wait for the fetch loop, which may be running a task itself (the solo pool).

    A cold shutdown, or a warm one past ``worker.shutdown_timeout``, stops waiting: the
    thread is a daemon and its task's message is requeued by :meth:`Consumer.drain`.
    """
    deadline = None if shutdown.timeout is None else time.monotonic() + shutdown.timeout
    while thread.is_alive() and not shutdown.cold:
        if deadline is not None and time.monotonic() >= deadline:
            log.warning("warm shutdown timed out waiting for the running task")
            shutdown.request(cold=True)
            break
        thread.join(0.1)
