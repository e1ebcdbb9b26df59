"""What runs in a child process: read requests, run them, send back what became of them.

The wire is pickles over a socket pair, framed by
:class:`multiprocessing.connection.Connection`, so that what the parent hands over at once
(requests queued behind a running one) crosses in one write and one read:

* parent to child: ``[(message fields, request fields, soft_time_limit), ...]``, each
  request as the values of its fields rather than as attrs instances, which pickle every
  field's name each time (twice the bytes and three times the encoding work);
* child to parent: ``(state, disposition, runtime, reason, retire, rss_kib, traceback,
  result, record)`` as each request ends, in the order they were sent; ``retire`` says the
  child exits after this report (a recycling limit was reached).

Only the outcome's fields travel back, not the request: the parent still holds it.

When the worker's result store saves several records in one round trip (a ``BatchStore``:
Redis, SQLite, SQL databases; see ``_writes``), a child does not write a task's final record
itself: ``record`` carries its fields, and the worker writes the records of all its
children together, a batch per round trip. The worker acknowledges the message once that
write finished, as for its own threads' tasks. A child that dies after its task returned
and before its report reached the worker (in a ``task_success`` or ``task_postrun`` hook,
or killed there by a hard time limit or a revocation with ``terminate``) takes the record
with it: the task is recorded as lost with the child, where a child writing its own record
had written SUCCESS before those hooks.
"""

from __future__ import annotations

import collections
import multiprocessing
import operator
import os
import pickle
import resource
import signal
import sys
from collections.abc import Callable
from collections.abc import Iterable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any
from typing import final

import attrs
from attrs import frozen

from celeriac import states
from celeriac.plugin import Celeriac
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import ResultRecord
from celeriac.plugin import SoftTimeLimitExceededError
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.plugin import run_safely

# state, disposition, runtime, reason, retire, rss (KiB), traceback, result repr, record
Frame = tuple[str, str, float, str | None, bool, int, str | None, str | None, tuple[Any, ...] | None]
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


@frozen(kw_only=True)
class ChildLimits:
    """When a child retires itself: after ``max_tasks`` tasks or above ``max_memory_kib``;
    and whether it describes results for events (``describe_results``)."""

    max_tasks: int = 0
    max_memory_kib: int = 0
    describe_results: bool = False
    #: Final records cross to the parent, which writes them (see the module's docstring).
    carry_records: bool = False


_MESSAGE_FIELDS = tuple(field.name for field in attrs.fields(TaskMessage))
_REQUEST_FIELDS = tuple(field.name for field in attrs.fields(TaskRequest) if field.name != "message")
_RECORD_FIELDS = tuple(field.name for field in attrs.fields(ResultRecord))
_message_values = operator.attrgetter(*_MESSAGE_FIELDS)
_record_values = operator.attrgetter(*_RECORD_FIELDS)
_request_values = operator.attrgetter(*_REQUEST_FIELDS)
#: A request as it crosses: its message's field values, its own, its soft time limit.
Crossing = tuple[tuple[Any, ...], tuple[Any, ...], float | None]


def encode_requests(requests: Iterable[tuple[TaskRequest, float | None]]) -> bytes:
    """Requests with their soft time limits, for one write to a child."""
    crossing: list[Crossing] = [
        (_message_values(request.message), _request_values(request), soft) for request, soft in requests
    ]
    return pickle.dumps(crossing, pickle.HIGHEST_PROTOCOL)


def decode_requests(data: bytes) -> list[tuple[TaskRequest, float | None]]:
    """The requests of :func:`encode_requests`, rebuilt through their classes' ``__init__``."""
    crossing: list[Crossing] = pickle.loads(data)
    return [
        (
            TaskRequest(
                message=TaskMessage(**dict(zip(_MESSAGE_FIELDS, message, strict=True))),
                **dict(zip(_REQUEST_FIELDS, request, strict=True)),
            ),
            soft,
        )
        for message, request, soft in crossing
    ]


def decode_frame(data: bytes) -> Frame:
    frame: Frame = pickle.loads(data)
    return frame


def decode_record(values: tuple[Any, ...]) -> ResultRecord:
    """The record a child carried (see :class:`Carrier`)."""
    return ResultRecord(**dict(zip(_RECORD_FIELDS, values, strict=True)))


@final
class Carried:
    """A final record that crosses to the parent with its outcome, to be written there: the
    child's ``Outcome.written``. It never finishes in the child."""

    __slots__ = ("record",)

    def __init__(self, record: ResultRecord) -> None:
        self.record = record

    def finished(self, timeout: float = 0.0) -> bool:
        return False

    def wait(self) -> None:
        raise RuntimeError("a carried record is written by the worker, not in its child")


@final
class Carrier:
    """What a child's executor hands final records to (``Executor(hand_to=...)``) when the
    parent writes them: it keeps them for the report."""

    def store_deferred(self, record: ResultRecord) -> Carried:
        return Carried(record)


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


def _written(outcome: Outcome) -> Outcome:
    """The outcome once its final record is written (a deferred store's write, handed over in
    this process): the parent settles the message on it. A write that failed gives the
    message back (its task runs again) rather than have it acknowledged without a result."""
    assert outcome.written is not None
    try:
        outcome.written.wait()
    except Exception as exc:
        return attrs.evolve(
            outcome,
            disposition=Disposition.REQUEUE,
            reason=f"its {outcome.state} record could not be written: {exc!r}",
            written=None,
        )
    return outcome


def _serve(conn: Connection, execute: Callable[[TaskRequest], Outcome], limits: ChildLimits) -> None:
    soft = _SoftLimit()
    signal.signal(signal.SIGALRM, soft)
    done = rss = 0
    waiting: collections.deque[tuple[TaskRequest, float | None]] = collections.deque()
    while True:
        if not waiting:
            # Idle: a SIGTERM sent to the whole process group must not kill this child (see
            # reset_signals); busy, SIGTERM's default stops it (revocation with terminate).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                data = conn.recv_bytes()
            except EOFError:
                return
            if not data:  # the parent retires this child
                return
            waiting.extend(decode_requests(data))
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        request, soft_time_limit = waiting.popleft()
        soft.arm(soft_time_limit)
        try:
            try:
                outcome = run_safely(execute, request)
            finally:
                soft.disarm()
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
        record: tuple[Any, ...] | None = None
        if isinstance(outcome.written, Carried):
            record = _record_values(outcome.written.record)
        elif outcome.written is not None:
            outcome = _written(outcome)
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
            record,
        )
        conn.send_bytes(pickle.dumps(frame, pickle.HIGHEST_PROTOCOL))
        if retire:
            return
