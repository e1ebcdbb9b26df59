"""What runs in a child process: read a request, run it, send back what became of it.

The wire is two pickled tuples over a socket pair, framed by
:class:`multiprocessing.connection.Connection`:

* parent to child: ``(request, soft_time_limit)``;
* child to parent: ``(state, disposition, runtime, reason, retire, rss_kib)``, where
  ``retire`` says the child exits after this message (a recycling limit was reached).

Only the outcome's fields travel back, not the request: the parent still holds it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType

from attrs import frozen

from celeriac import states
from celeriac.plugin import Celeriac
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import SoftTimeLimitExceededError
from celeriac.plugin import TaskRequest
from celeriac.plugin import run_safely

# state, disposition, runtime, reason, retire, rss (KiB), traceback, result repr
Frame = tuple[str, str, float, str | None, bool, int, str | None, str | None]
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


@frozen(kw_only=True)
class ChildLimits:
    """When a child retires itself: after ``max_tasks`` tasks or above ``max_memory_kib``;
    and whether it describes results for events (``describe_results``)."""

    max_tasks: int = 0
    max_memory_kib: int = 0
    describe_results: bool = False


def encode_request(request: TaskRequest, soft_time_limit: float | None) -> bytes:
    return pickle.dumps((request, soft_time_limit), pickle.HIGHEST_PROTOCOL)


def decode_frame(data: bytes) -> Frame:
    frame: Frame = pickle.loads(data)
    return frame


class _SoftLimit:
    """Raises :class:`SoftTimeLimitExceededError` in the task when SIGALRM arrives.

    ``armed`` is cleared as soon as the request returns, so an alarm that fires in the gap
    before the timer is cancelled is ignored instead of hitting the child's own code.
    """

    def __init__(self) -> None:
        self.armed = False
        self.seconds = 0.0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise SoftTimeLimitExceededError(f"soft time limit ({self.seconds:g} s) exceeded")

    def arm(self, seconds: float | None) -> None:
        if seconds:
            self.seconds = seconds
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self) -> None:
        self.armed = False
        if self.seconds:
            self.seconds = 0.0
            signal.setitimer(signal.ITIMER_REAL, 0)


def rss_kib() -> int:
    """This process's resident memory now, in KiB (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_KIB
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak


def serve(
    conn: Connection,
    execute: Callable[[TaskRequest], Outcome],
    limits: ChildLimits,
    app: Celeriac | None = None,
) -> None:
    """Run requests from ``conn`` one at a time until the parent closes it or a limit is
    reached. ``app``'s ``worker_process_init`` hook and signal run first (per-child setup:
    database connections), its ``worker_process_shutdown`` last."""
    multiprocessing.current_process().name = f"prefork-{os.getpid()}"  # shown in log lines
    if app is not None:
        app.plugins.lifecycle.worker_process_init(app)
    try:
        _serve(conn, execute, limits)
    finally:
        if app is not None:
            app.plugins.lifecycle.worker_process_shutdown(app, 0)


def _serve(conn: Connection, execute: Callable[[TaskRequest], Outcome], limits: ChildLimits) -> None:
    soft = _SoftLimit()
    signal.signal(signal.SIGALRM, soft)
    done = rss = 0
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        if not data:  # the parent retires this child
            return
        request, soft_time_limit = pickle.loads(data)
        soft.arm(soft_time_limit)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # revocation with terminate (see reset_signals)
        try:
            try:
                outcome = run_safely(execute, request)
            finally:
                soft.disarm()
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        except SoftTimeLimitExceededError:
            # The alarm fired in the few instructions between the request's return and the
            # disarm: its outcome is lost, so the message goes back, as for any error
            # outside the task (a stored SUCCESS is final, so a second run cannot undo it).
            outcome = Outcome(
                request=request,
                state=states.FAILURE,
                disposition=Disposition.REQUEUE,
                reason="soft time limit fired after the task returned",
            )
        done += 1
        # Reading /proc costs about as much as a no-op task: every task only when a memory
        # limit needs it, otherwise now and then for the pool's statistics.
        if limits.max_memory_kib > 0 or done % 64 == 1:
            rss = rss_kib()
        retire = (limits.max_tasks > 0 and done >= limits.max_tasks) or (
            limits.max_memory_kib > 0 and rss > limits.max_memory_kib
        )
        frame: Frame = (
            outcome.state,
            outcome.disposition.value,
            outcome.runtime,
            outcome.reason,
            retire,
            rss,
            outcome.traceback,
            outcome.result,
        )
        conn.send_bytes(pickle.dumps(frame, pickle.HIGHEST_PROTOCOL))
        if retire:
            return
