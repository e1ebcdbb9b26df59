"""Stopping a consumer without losing a message: what was reserved and never started goes
back to the broker at once; what runs is waited for (a warm shutdown) until
``worker.shutdown_timeout``, after which the shutdown turns cold and the rest goes back too."""

from __future__ import annotations

import logging
import time

from celeriac._contract.protocols import Pool
from celeriac._contract.protocols import Transport
from celeriac._contract.shutdown import ShutdownState
from celeriac._worker.inflight import InFlightTable
from celeriac._worker.settle import Settler

log = logging.getLogger("celeriac.worker")


def not_started(table: InFlightTable, pool: Pool) -> set[int]:
    """The tokens of requests held back (ETA, rate limit) or still queued in the pool, which
    the pool gives up; they will not start."""
    return table.take_held() | {request.token for request in pool.cancel_pending()}


def give_back(table: InFlightTable, transport: Transport, tokens: set[int]) -> None:
    """Requeue the messages of ``tokens`` not yet acknowledged."""
    given_back = [delivery for delivery in table.pop(list(tokens)) if delivery is not None]
    if given_back:
        transport.reject(given_back, requeue=True)


def drain(
    table: InFlightTable, settler: Settler, pool: Pool, transport: Transport, shutdown: ShutdownState
) -> None:
    """After the fetch loop ended: give back what has not started, wait for what runs (warm),
    settle what finished, and give back what is left.

    When ``worker.shutdown_timeout`` runs out the shutdown turns cold: the pool stops
    without waiting, so a task whose message was given back cannot also finish here.
    """
    give_back(table, transport, not_started(table, pool))
    deadline = None if shutdown.timeout is None else time.monotonic() + shutdown.timeout
    if not table.wait_empty(deadline, lambda: shutdown.cold):
        log.warning("warm shutdown timed out with %d tasks running", len(table))
        shutdown.request(cold=True)
    settler.stop()
    unfinished = table.tokens()
    if unfinished:
        # Cold shutdown: give the messages back now instead of after the visibility timeout.
        log.warning("requeueing %d unfinished tasks", len(unfinished))
        give_back(table, transport, unfinished)
