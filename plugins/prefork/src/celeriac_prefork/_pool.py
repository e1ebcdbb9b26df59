"""The parent side of the prefork pool: dispatch, supervision, limits and scaling.

Requests wait in the parent until a child is idle, and only an idle child is given one, so
a long task never holds up the requests behind it while another child is free, and
``cancel_pending`` can return every request that has not started. Because a request goes
only to an idle child, handing it over *is* starting it: the parent calls ``on_start``
just before it writes the request, so an early acknowledgement always precedes the run.

One supervisor thread owns the children: it reads their reports, notices their exit at
once (pidfd, or end of file on the socket), enforces hard time limits, forks replacements
from the zygote, and scales between the bounds.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import signal
import threading
import time
import traceback
from collections.abc import Callable
from collections.abc import Container
from functools import partial
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac import states
from celeriac.plugin import Disposition
from celeriac.plugin import Outcome
from celeriac.plugin import PendingWrite
from celeriac.plugin import ResultRecord
from celeriac.plugin import SerializationError
from celeriac.plugin import TaskRequest
from celeriac.plugin import run_safely
from celeriac_prefork._child import ChildLimits
from celeriac_prefork._child import Frame
from celeriac_prefork._child import decode_frame
from celeriac_prefork._child import decode_record
from celeriac_prefork._child import encode_requests
from celeriac_prefork._child import serve
from celeriac_prefork._config import PreforkConfig
from celeriac_prefork._config import bounds
from celeriac_prefork._forkserver import zygote_command
from celeriac_prefork._handles import Child
from celeriac_prefork._handles import Job
from celeriac_prefork._handles import Runtimes
from celeriac_prefork._verdict import SHUTDOWN
from celeriac_prefork._verdict import TERMINATED
from celeriac_prefork._verdict import TIMEOUT
from celeriac_prefork._verdict import Limits
from celeriac_prefork._verdict import time_limits
from celeriac_prefork._verdict import verdict
from celeriac_prefork._writes import RecordWriter
from celeriac_prefork._writes import carries
from celeriac_prefork._writes import failed_write
from celeriac_prefork._zygote import Zygote
from celeriac_prefork._zygote import ZygoteLostError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from celeriac.plugin import Celeriac

log = logging.getLogger("celeriac.worker")
#: The supervisor looks at deadlines, scaling and stopping at least this often (seconds).
TICK = 0.5
#: How long a stopping pool waits for idle children to exit before killing them.
EXIT_GRACE = 10.0
#: A child running short tasks is given waiting requests at once, behind the running one, as
#: many as its tasks take this long together (by their moving average) and at most
#: ``QUEUE_DEPTH``: so it never idles for a round trip through the worker between two short
#: tasks, and a request queued so waits at most about this long for its child.
QUEUE_BEHIND = 0.005
QUEUE_DEPTH = 8
#: How long a stopping pool waits for the records its children carried to be written.
WRITE_GRACE = 2.0


@final
class PreforkPool:
    """Runs requests in child processes forked from the worker (through a zygote).

    :param execute: runs one request; called in a child, which is a copy of this process.
    :param concurrency: children to run when ``settings.autoscale`` is empty.
    :param app: the app, for time limits from task options and to record failures of
        children that die; None (tests with plain functions) records nothing.
    :param revoked: ids revoked while their request waits here: not sent to a child, but
        settled in this process by ``execute``, which records them REVOKED without running.
    :param loglevel: the forkserver zygote's log level.
    :param describe_results: put a short repr of each return value in the outcome (for
        task-succeeded events), as the worker's executor does.
    """

    def __init__(
        self,
        execute: Callable[[TaskRequest], Outcome],
        *,
        concurrency: int,
        settings: PreforkConfig | None = None,
        app: Celeriac | None = None,
        revoked: Container[str] = frozenset(),
        loglevel: str = "INFO",
        describe_results: bool = False,
    ) -> None:
        settings = settings or PreforkConfig()
        scale = bounds(settings, concurrency)
        self._execute = execute
        self._app = app
        self._revoked = revoked
        self._limit_overrides: dict[str, Limits] = {}
        store = app.result_store if app is not None and app.result_store_url is not None else None
        #: Writes the final records children carry to this process (see _writes), if they do.
        #: A write takes at most half a lease: a held message's lease is not renewed.
        self._writer = (
            RecordWriter(store, partial(_refused, app), limit=app.config.visibility_timeout / 2)
            if app is not None and store is not None and carries(store)
            else None
        )
        self._limits = ChildLimits(
            max_tasks=settings.max_tasks_per_child,
            max_memory_kib=settings.max_memory_per_child,
            describe_results=describe_results,
            carry_records=self._writer is not None,
        )
        self._autoscaling = scale.autoscaling
        self._keepalive = settings.autoscale_keepalive
        self._min, self._max = scale.minimum, scale.maximum
        self._target = scale.minimum if scale.autoscaling else scale.maximum
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: collections.deque[Job] = collections.deque()
        self._children: dict[int, Child] = {}
        self._idle: list[Child] = []  # a stack: the longest idle sit at the bottom, to be retired
        command = zygote_command(settings, app, loglevel, self._limits)
        if command is None:
            self._writer = None  # forked children run the worker's executor, which writes itself
        self._zygote = Zygote(self._child_main, command)
        self._selector: selectors.BaseSelector | None = None
        self._wake_r = self._wake_w = -1
        self._supervisor = threading.Thread(target=self._supervise, name="celeriac-prefork", daemon=True)
        self._state = "new"
        self._cold = False
        self._timed: set[Child] = set()  # children running a request with a hard time limit
        self._dirty = True  # children or targets changed: reconcile before the next tick
        self._counts = {"spawned": 0, "lost": 0, "timeouts": 0, "retired": 0}
        self._runtimes = Runtimes()
        self._depth = 0  # requests queued behind a running one, at the last look (see _fill)
        self._generation = 0  # restarts so far (control pool_restart)

    # --- the Pool protocol ----------------------------------------------------------

    @property
    def limit(self) -> int:
        """The most requests that can run at once: the maximum number of children."""
        return self._max

    @property
    def reserve(self) -> int:
        """Messages the worker may hold beyond those running (``celeriac.plugin.ReservingPool``,
        used when ``worker.prefetch`` is 0): twice as many as the children take behind short
        tasks (see ``_fill``), so that their queues stay full while the next lot is fetched
        and the last one acknowledged; one per child otherwise."""
        return self._max * (2 * self._depth if self._depth else 1)

    def start(self) -> None:
        self._zygote.start()  # first, while this process has the fewest threads and descriptors
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._state = "running"
        for _ in range(self._target):
            self._spawn()
        self._supervisor.start()

    def submit(
        self,
        request: TaskRequest,
        on_start: Callable[[TaskRequest], None],
        on_done: Callable[[Outcome], None],
    ) -> None:
        job = Job(request, on_start, on_done, time_limits(self._app, request, self._limit_overrides))
        with self._lock:
            child = self._idle.pop() if self._idle and not self._pending else None
            if child is None:
                self._pending.append(job)
                wake = self._autoscaling and self._target < self._max
            else:
                wake = self._assign(child, job)
        if child is not None:
            self._send(child, job)
        if wake:
            self._wake()

    def cancel_pending(self) -> list[TaskRequest]:
        with self._lock:
            cancelled = [job.request for job in self._pending]
            self._pending.clear()
        return cancelled

    def stop(self, *, wait: bool) -> None:
        """Warm (``wait``): finish running and queued requests, then let children exit.
        Cold: kill the children at once; their requests are abandoned (the consumer requeues)."""
        with self._changed:
            if self._state != "running":
                return
            self._state = "stopping"
            if wait:
                while self._pending or any(child.job for child in self._children.values()):
                    self._changed.wait(TICK)
            else:
                self._cold = True
                self._pending.clear()
            if not wait:
                for child in self._children.values():
                    child.kill_reason = SHUTDOWN
                    child.kill(signal.SIGKILL)
        self._wake()
        self._supervisor.join()
        if self._writer is not None:
            # The settler stopped first and gave back the messages of writes still under way
            # (their tasks run again): these writes only get to finish.
            self._writer.close(WRITE_GRACE)
        self._zygote.stop()
        assert self._selector is not None
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._state = "stopped"

    # --- remote control -------------------------------------------------------------

    def grow(self, n: int = 1) -> None:
        """Run ``n`` more children, raising the maximum if needed."""
        with self._lock:
            self._target += max(0, n)
            self._max = max(self._max, self._target)
        self._wake()

    def shrink(self, n: int = 1) -> None:
        """Run ``n`` fewer children (idle ones go now, busy ones after their task).

        The maximum comes down by ``n`` too (never below one), so the slots the worker
        reports and reserves for are the ones it has and the autoscaler cannot grow the pool
        back past them; the minimum follows the size down, as Celery's autoscaler does.
        """
        n = max(0, n)
        with self._lock:
            floor = 0 if self._autoscaling else 1
            self._max = max(1, self._max - n)
            self._target = min(self._max, max(floor, self._target - n))
            self._min = min(self._min, self._target)
            if not self._autoscaling:
                self._max = self._target
        self._wake()

    def restart(self) -> None:
        """Replace every child (``control pool_restart``): idle ones now, busy ones once
        their task ends; the new children run ``worker_process_init`` again."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
            for child in idle:
                child.retiring = True
        for child in idle:
            self._quit(child)
        self._dirty = True
        self._wake()

    def autoscale(self, maximum: int, minimum: int = 0) -> None:
        """Scale between ``minimum`` and ``maximum`` children from now on (equal: a fixed size)."""
        with self._lock:
            self._max, self._min = max(1, maximum), max(0, min(minimum, maximum))
            self._autoscaling = self._min != self._max
            self._target = min(self._max, max(self._min, self._target))
        self._wake()

    def set_time_limit(self, task_name: str, *, soft: float | None = None, hard: float | None = None) -> None:
        """Limits for requests of ``task_name`` submitted from now on, over header and options."""
        self._limit_overrides[task_name] = (hard, soft)

    def terminate(self, task_id: str, signum: int = signal.SIGKILL) -> bool:
        """Kill the child running ``task_id`` (revocation); the task is recorded REVOKED."""
        with self._lock:
            child = next((c for c in self._children.values() if c.job and c.job.request.id == task_id), None)
            if child is None or child.kill_reason is not None:
                return False
            child.kill_reason = TERMINATED
            child.kill(signum)
        return True

    def stats(self) -> dict[str, Any]:
        """Figures for ``inspect stats``: children, what each has done, memory, queue."""
        with self._lock:
            children = {
                child.pid: {"tasks": child.done, "rss_kib": child.rss, "busy": child.job is not None}
                for child in self._children.values()
            }
            return {
                "pool": "prefork",
                "min_concurrency": self._min,
                "max_concurrency": self._max,
                "target": self._target,
                "processes": sorted(children),
                "children": children,
                "pending": len(self._pending),
                "zygote": self._zygote.pid,
                **self._counts,
            }

    # --- dispatch -------------------------------------------------------------------

    def _assign(self, child: Child, job: Job) -> bool:
        """Give ``job`` to an idle child (lock held); True when the supervisor must see a deadline."""
        child.job = job
        if job.hard is not None:
            child.deadline = time.monotonic() + job.hard
            self._timed.add(child)
            return True
        return False

    def _send(self, child: Child, job: Job, behind: list[Job] | None = None) -> None:
        """Start ``job`` in ``child``, with ``behind`` queued after it in the same write."""
        if job.request.id in self._revoked:
            # Revoked while it waited here: the child goes back to idle, and the executor,
            # which runs nothing for a revoked id, records it in this process. Requests queued
            # behind it (revoked after they were) go back to the front of the queue.
            with self._lock:
                for queued in reversed(behind or ()):
                    if queued in child.queued:
                        child.queued.remove(queued)
                        self._pending.appendleft(queued)
                if child.job is job:
                    child.job, child.deadline = None, None
                    self._timed.discard(child)
                    self._idle.append(child)
            self._wake()
            _call(job.on_done, run_safely(self._execute, job.request))
            return
        self._write(child, [job, *(behind or ())])

    def _write(self, child: Child, jobs: list[Job]) -> None:
        """Start ``jobs`` in ``child`` (its new running one first, or requests queued behind
        it): one write for all of them."""
        for job in jobs:
            try:
                job.on_start(job.request)
            except Exception:
                request = job.request
                log.exception("on_start failed for %s[%s]; running it anyway", request.task, request.id)
        try:
            child.conn.send_bytes(encode_requests([(job.request, job.soft) for job in jobs]))
        except OSError:
            # The child died: the requests never reached it, so other children run them.
            with self._lock:
                for job in reversed(jobs):
                    if job in child.queued:
                        child.queued.remove(job)
                        self._pending.appendleft(job)
                    elif child.job is job:
                        child.job, child.deadline, child.retiring = None, None, True
                        self._timed.discard(child)
                        self._pending.appendleft(job)
            self._wake()

    def _fill(self, child: Child) -> list[Job]:
        """Queue waiting requests in ``child`` behind its running one (lock held).

        Only behind tasks that have been short (see ``QUEUE_BEHIND``), never with a hard
        time limit (its deadline runs from the start, which the worker would not see), and
        not while autoscaling could start a child for them instead.
        """
        running = child.job
        if running is None or child.retiring or (self._autoscaling and self._target < self._max):
            return []
        average = self._runtimes.average(running.request.task)
        if average is None or running.hard is not None or running.request.id in self._revoked:
            self._depth = 0
            return []
        depth = self._depth = min(QUEUE_DEPTH, int(QUEUE_BEHIND / max(average, 1e-6)))
        added: list[Job] = []
        while self._pending and len(child.queued) < depth:
            waiting = self._pending[0]
            if waiting.hard is not None or waiting.request.id in self._revoked:
                break
            self._pending.popleft()
            child.queued.append(waiting)
            added.append(waiting)
        return added

    def _take_back(self, child: Child) -> None:
        """Requests written to a child that will never read them: none started, so they go
        back to the front of the queue (lock held); a cold stop drops them (they are requeued)."""
        if child.queued and not self._cold:
            self._pending.extendleft(reversed(child.queued))
        child.queued.clear()

    def _dispatch(self) -> None:
        """Pair waiting requests with idle children."""
        pairs: list[tuple[Child, Job]] = []
        with self._lock:
            while self._pending and self._idle:
                child, job = self._idle.pop(), self._pending.popleft()
                self._assign(child, job)  # called by the supervisor only, which reads deadlines next
                pairs.append((child, job))
        for child, job in pairs:
            self._send(child, job)

    def _child_main(self, conn: Connection) -> None:
        serve(conn, self._execute, self._limits, self._app)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    # --- supervision (the supervisor thread only) ---------------------------------------

    def _supervise(self) -> None:
        stopping_since: float | None = None
        next_tick = 0.0
        while True:
            try:
                self._handle_events()
                if self._timed:
                    self._expire()
                # The rest only when something changed, or once a tick: a report from a
                # child, the common event, needs none of it.
                now = time.monotonic()
                if not self._dirty and now < next_tick:
                    continue
                self._dirty, next_tick = False, now + TICK
                if self._state == "running" or self._draining():
                    if self._autoscaling:
                        self._autoscale()
                    self._reconcile()
                    self._dispatch()
                else:
                    stopping_since = stopping_since or now
                    if self._wind_down(now - stopping_since):
                        return
            except Exception:
                log.exception("prefork supervisor error; carrying on")
                time.sleep(0.1)

    def _handle_events(self) -> None:
        assert self._selector is not None
        for key, _ in self._selector.select(self._timeout()):
            if key.data is None:
                self._dirty = True
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            else:
                kind, child = key.data
                if kind == "conn":
                    self._read(child)
                else:
                    self._lost(child)

    def _draining(self) -> bool:
        """A warm stop still has requests to finish, so children are still replaced."""
        with self._lock:
            return not self._cold and (bool(self._pending) or any(c.job for c in self._children.values()))

    def _timeout(self) -> float:
        if not self._timed:
            return TICK
        now = time.monotonic()
        with self._lock:
            deadlines = [c.deadline for c in self._timed if c.deadline is not None]
        return max(0.0, min([TICK, *(d - now for d in deadlines)]))

    def _spawn(self) -> None:
        assert self._selector is not None
        try:
            spawned = self._zygote.spawn()
        except ZygoteLostError as exc:
            # Forking a new zygote from this (threaded) process is the fallback, not the rule.
            log.warning("%s; starting a new zygote", exc)
            self._zygote.stop(timeout=1.0)
            self._zygote.start()
            spawned = self._zygote.spawn()
        child = Child(spawned)
        child.generation = self._generation
        self._selector.register(child.conn.fileno(), selectors.EVENT_READ, ("conn", child))
        if child.pidfd is not None:
            self._selector.register(child.pidfd, selectors.EVENT_READ, ("exit", child))
        with self._lock:
            self._children[child.pid] = child
            self._idle.append(child)
            self._counts["spawned"] += 1

    def _read(self, child: Child) -> None:
        if child.gone:
            return
        try:
            data = child.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(child)
            return
        self._finished(child, data)

    def _finished(self, child: Child, data: bytes) -> None:
        frame = decode_frame(data)
        _, _, runtime, _, retire, rss, *_ = frame  # the rest is the outcome's (_outcome)
        next_job: Job | None = None
        with self._changed:
            job, child.job, child.deadline = child.job, None, None
            self._timed.discard(child)
            child.done += 1
            child.rss = rss
            if job is not None:
                self._runtimes.add(job.request.task, runtime)
            if retire or child.kill_reason is not None or self._cold:
                self._take_back(child)  # it exits (or is killed) without reading them
            active = sum(1 for c in self._children.values() if not c.retiring)
            if child.queued:
                child.job = child.queued.popleft()  # read by the child as it sent this report
            elif (
                retire
                or child.kill_reason is not None
                or active > self._target
                or self._cold
                or child.generation < self._generation
            ):
                child.retiring = True
            elif self._pending:
                next_job = self._pending.popleft()
                self._assign(child, next_job)  # this thread reads deadlines on every loop
            else:
                child.idle_since = time.monotonic()
                self._idle.append(child)
            extra = self._fill(child)
            self._changed.notify_all()
        if child.retiring:
            self._dirty = True
        if retire:
            self._counts["retired"] += 1
        elif child.retiring and child.kill_reason is None:
            self._quit(child)
        if next_job is not None:
            self._send(child, next_job, extra)
        elif extra:
            self._write(child, extra)
        if job is not None:
            _call(job.on_done, self._outcome(job, frame))

    def _outcome(self, job: Job, frame: Frame) -> Outcome:
        """The outcome a child reported, its carried record handed to the writer."""
        state, disposition, runtime, reason, _, _, trace, result, record = frame
        written: PendingWrite | None = None
        if record is not None and self._writer is not None:
            try:
                written = self._writer.write(decode_record(record))
            except Exception as exc:  # not handed over (stopping): settled as a failed write
                written = failed_write(exc)
        return Outcome(
            request=job.request,
            state=state,
            disposition=Disposition(disposition),
            runtime=runtime,
            reason=reason,
            traceback=trace,
            result=result,
            written=written,
        )

    def _lost(self, child: Child) -> None:
        """The child exited (or closed its socket): clean up and settle its request."""
        if child.gone:
            return
        # Reports the child sent before it exited (a last outcome) are read first.
        with contextlib.suppress(EOFError, OSError):
            while child.conn.poll(0):
                self._finished(child, child.conn.recv_bytes())
        assert self._selector is not None
        self._selector.unregister(child.conn.fileno())
        child.conn.close()
        if child.pidfd is not None:
            self._selector.unregister(child.pidfd)
        with self._changed:
            child.gone = True
            if child.pidfd is not None:
                os.close(child.pidfd)
                child.pidfd = None
            self._children.pop(child.pid, None)
            self._timed.discard(child)
            self._dirty = True
            if child in self._idle:
                self._idle.remove(child)
            job, child.job = child.job, None
            self._take_back(child)
            cold = self._cold
            self._changed.notify_all()
        if job is None:
            if not child.retiring and self._state == "running":
                log.warning("prefork child %d exited while idle; replacing it", child.pid)
            return
        if cold:
            return  # cold shutdown: the consumer gives the message back
        self._counts["timeouts" if child.kill_reason == TIMEOUT else "lost"] += 1
        _call(job.on_done, verdict(self._app, job.request, child.pid, child.kill_reason, job.hard))

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [c for c in self._timed if c.deadline is not None and c.deadline <= now]
            for child in expired:
                self._timed.discard(child)
                if child.kill_reason is None:
                    child.kill_reason, child.deadline = TIMEOUT, None
                    child.kill(signal.SIGKILL)

    def _reconcile(self) -> None:
        """Fork or retire children until as many run as the target says."""
        with self._lock:
            active = [c for c in self._children.values() if not c.retiring]
            surplus: list[Child] = []
            while len(active) - len(surplus) > self._target and self._idle:
                child = self._idle.pop(0)
                child.retiring = True
                surplus.append(child)
            missing = self._target - len(active)
        for child in surplus:
            self._quit(child)
        for _ in range(missing):
            self._spawn()

    def _autoscale(self) -> None:
        now = time.monotonic()
        with self._lock:
            active = sum(1 for c in self._children.values() if not c.retiring)
            if self._pending:
                self._target = max(self._target, min(self._max, active + len(self._pending)))
            else:
                stale = sum(1 for c in self._idle if now - c.idle_since >= self._keepalive)
                self._target = max(self._min, min(self._target, active - stale))

    def _quit(self, child: Child) -> None:
        """Ask an idle child to exit: an empty message (end of file works too)."""
        with contextlib.suppress(OSError):
            child.conn.send_bytes(b"")

    def _wind_down(self, elapsed: float) -> bool:
        """While stopping: retire idle children; True once all have exited."""
        with self._lock:
            idle, self._idle = self._idle, []
            for child in idle:
                child.retiring = True
            remaining = list(self._children.values())
        for child in idle:
            self._quit(child)
        if elapsed > EXIT_GRACE:
            with self._lock:
                for child in remaining:
                    child.kill(signal.SIGKILL)
        return not remaining


def _refused(app: Celeriac, record: ResultRecord, error: SerializationError) -> ResultRecord:
    """The FAILURE stored for a task whose final record the store refused (as the executor
    stores one when the child writes it)."""
    trace = "".join(traceback.format_exception(error))
    return app.results.encode(record.task_id, states.FAILURE, error, trace, reply_to=record.reply_to)


def _call(on_done: Callable[[Outcome], None], outcome: Outcome) -> None:
    try:
        on_done(outcome)
    except Exception:
        log.exception("on_done failed for %s[%s]", outcome.request.task, outcome.request.id)
