"""The cluster as events describe it: workers and their stats, tasks and their states.

:class:`ClusterState` is a pure fold over events: ``apply`` them in any order received and
read the result. It does no I/O, starts no thread and reads no clock: liveness questions
take ``now`` as an argument. It is not thread-safe; a reader on another thread (a live
view, a web dashboard) must hold a lock around ``apply`` and reads.

Task events may arrive out of order (several workers, retries, batches): as in Celery, an
event whose state logically comes *before* the task's current state (a late STARTED after
SUCCESS) records its timestamp and a few fields but does not move the state back.
"""

from __future__ import annotations

from collections import Counter
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import final

from attrs import define

from celeriac import states
from celeriac.plugin import precedence

#: A worker is considered gone after this many heartbeat intervals without news.
HEARTBEAT_EXPIRY = 3
#: Seconds between heartbeats assumed until a worker says (Celery's and celeriac's default).
DEFAULT_FREQ = 2.0

_TASK_STATES = {
    "task-sent": states.PENDING,
    "task-received": states.RECEIVED,
    "task-started": states.STARTED,
    "task-succeeded": states.SUCCESS,
    "task-failed": states.FAILURE,
    "task-retried": states.RETRY,
    "task-revoked": states.REVOKED,
    "task-rejected": states.REJECTED,
}
#: Task attributes that record when the event of the same name happened.
_TIMESTAMPS = frozenset(kind.removeprefix("task-") for kind in _TASK_STATES)
#: Fields an event may set on a task (the rest of an event's fields are ignored).
_TASK_FIELDS = frozenset(
    {
        "name",
        "args",
        "kwargs",
        "retries",
        "eta",
        "expires",
        "root_id",
        "parent_id",
        "queue",
        "routing_key",
        "result",
        "runtime",
        "exception",
        "traceback",
        "terminated",
        "expired",
        "requeue",
    }
)
#: What an event that happened-before the current state may still fill in.
_KEEP_WHEN_LATE = frozenset(
    {"name", "args", "kwargs", "retries", "eta", "expires", "root_id", "parent_id", "queue", "routing_key"}
)


@define(kw_only=True)
class WorkerInfo:
    """One worker as its events describe it."""

    hostname: str
    #: False once the worker said ``worker-offline``; see :meth:`alive` for missed heartbeats.
    online: bool = True
    #: Local time of the last event from this worker (any type).
    last_seen: float = 0.0
    #: The worker's timestamp of its last ``worker-heartbeat``.
    last_heartbeat: float | None = None
    freq: float = DEFAULT_FREQ
    active: int = 0
    processed: int = 0
    loadavg: tuple[float, ...] = ()
    sw_ident: str | None = None
    sw_ver: str | None = None
    sw_sys: str | None = None
    pid: int | None = None

    def alive(self, now: float) -> bool:
        """Online, and heard from within ``HEARTBEAT_EXPIRY`` heartbeat intervals of ``now``."""
        return self.online and now - self.last_seen <= self.freq * HEARTBEAT_EXPIRY


@define(kw_only=True)
class TaskInfo:
    """One task as its events describe it; times are the workers' event timestamps."""

    uuid: str
    name: str | None = None
    state: str = states.PENDING
    args: str | None = None
    kwargs: str | None = None
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    queue: str | None = None
    routing_key: str | None = None
    #: The worker that last handled it, and the client that sent it (``task-sent``).
    worker: str | None = None
    client: str | None = None
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    succeeded: float | None = None
    failed: float | None = None
    retried: float | None = None
    revoked: float | None = None
    rejected: float | None = None
    #: Timestamp of the event that set the current state.
    timestamp: float | None = None
    runtime: float | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    terminated: bool | None = None
    expired: bool | None = None
    requeue: bool | None = None


@final
class ClusterState:
    """Workers and (the newest ``max_tasks``) tasks, built by :meth:`apply`.

    :param max_tasks: tasks kept; the least recently updated are forgotten first.
    """

    def __init__(self, *, max_tasks: int = 10_000) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self.workers: dict[str, WorkerInfo] = {}
        self.tasks: OrderedDict[str, TaskInfo] = OrderedDict()
        #: Tasks kept, by state, and by name then state (tasks with no known name are left out).
        self.task_counts: Counter[str] = Counter()
        self.task_counts_by_name: dict[str, Counter[str]] = {}
        #: Events applied, every type included.
        self.event_count = 0

    def apply(self, event: Mapping[str, Any], *, now: float | None = None) -> None:
        """Fold one event in.

        :param now: the local time it was received, for liveness (default: its timestamp).
            Pass it when workers' clocks may differ from the reader's.
        """
        self.event_count += 1
        kind = event.get("type", "")
        hostname = event.get("hostname")
        timestamp = float(event.get("timestamp") or 0.0)
        received = timestamp if now is None else now
        if kind.startswith("worker-") and isinstance(hostname, str):
            self._worker_event(kind, hostname, event, received)
        elif kind.startswith("task-") and isinstance(event.get("uuid"), str):
            if isinstance(hostname, str) and kind != "task-sent":
                self._seen(hostname, received, event)
            self._task_event(kind, event, timestamp)

    def apply_all(self, events: Iterable[Mapping[str, Any]], *, now: float | None = None) -> None:
        for event in events:
            self.apply(event, now=now)

    # --- reading ---------------------------------------------------------------------

    def alive_workers(self, now: float) -> list[WorkerInfo]:
        return [worker for worker in self.workers.values() if worker.alive(now)]

    def recent_tasks(self, limit: int | None = None) -> list[TaskInfo]:
        """Tasks, the most recently updated first."""
        found: list[TaskInfo] = []
        for task in reversed(self.tasks.values()):
            if limit is not None and len(found) >= limit:
                break
            found.append(task)
        return found

    def tasks_in(self, state: str) -> Iterator[TaskInfo]:
        return (task for task in self.tasks.values() if task.state == state)

    # --- folding ---------------------------------------------------------------------

    def _seen(self, hostname: str, received: float, event: Mapping[str, Any]) -> WorkerInfo:
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerInfo(hostname=hostname)
        worker.last_seen = max(worker.last_seen, received)
        if isinstance(event.get("pid"), int):
            worker.pid = event["pid"]
        return worker

    def _worker_event(self, kind: str, hostname: str, event: Mapping[str, Any], received: float) -> None:
        worker = self._seen(hostname, received, event)
        if kind == "worker-offline":
            worker.online = False
            return
        worker.online = True
        freq = event.get("freq")
        if isinstance(freq, (int, float)) and freq > 0:
            worker.freq = float(freq)
        for name in ("sw_ident", "sw_ver", "sw_sys"):
            if isinstance(event.get(name), str):
                setattr(worker, name, event[name])
        if kind == "worker-heartbeat":
            worker.last_heartbeat = float(event.get("timestamp") or received)
            worker.active = int(event.get("active") or 0)
            worker.processed = int(event.get("processed") or 0)
            worker.loadavg = tuple(float(x) for x in event.get("loadavg") or ())

    def _task_event(self, kind: str, event: Mapping[str, Any], timestamp: float) -> None:
        uuid: str = event["uuid"]
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskInfo(uuid=uuid)
            if len(self.tasks) > self.max_tasks:
                _, evicted = self.tasks.popitem(last=False)
                self._tally(evicted, -1)
        else:
            self.tasks.move_to_end(uuid)
            self._tally(task, -1)
        suffix = kind.removeprefix("task-")
        state = _TASK_STATES.get(kind, suffix.upper())  # a custom event type names its state
        if suffix in _TIMESTAMPS:
            setattr(task, suffix, timestamp)
        late = states.RETRY not in (state, task.state) and precedence(state) > precedence(task.state)
        keep = _KEEP_WHEN_LATE if late else _TASK_FIELDS
        for key in keep & event.keys():
            setattr(task, key, event[key])
        if not late:
            task.state = state
            task.timestamp = timestamp
        if kind == "task-sent":
            task.client = event.get("hostname")
        elif isinstance(event.get("hostname"), str):
            task.worker = event["hostname"]
        self._tally(task, +1)

    def _tally(self, task: TaskInfo, sign: int) -> None:
        self.task_counts[task.state] += sign
        if not self.task_counts[task.state]:
            del self.task_counts[task.state]
        if task.name is None:
            return
        by_state = self.task_counts_by_name.setdefault(task.name, Counter())
        by_state[task.state] += sign
        if not by_state[task.state]:
            del by_state[task.state]
            if not by_state:
                del self.task_counts_by_name[task.name]
