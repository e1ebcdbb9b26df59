"""The metrics, and the fold that turns worker events into them.

Both exporters feed the same :class:`TaskMetrics`: the in-worker one from an event sink,
the cluster one from the broker's event stream. Events, not the ``celeriac_task_*`` hooks,
because those run where the task runs (a prefork child), while events are sent by the
worker's main process whatever the pool.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import final

from attrs import define
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

log = logging.getLogger("celeriac.prometheus")

#: Event type -> the state label it counts under (Celery's state names).
TASK_STATES: Mapping[str, str] = {
    "task-sent": "PENDING",
    "task-received": "RECEIVED",
    "task-started": "STARTED",
    "task-succeeded": "SUCCESS",
    "task-failed": "FAILURE",
    "task-retried": "RETRY",
    "task-revoked": "REVOKED",
    "task-rejected": "REJECTED",
}
#: Events after which a task id counts as finished. Events of one id are not ordered: a
#: retry is published by whoever runs the task, so the next run's events may come before
#: the task-retried of the first. Finished ids therefore stay known a little longer.
_FINAL = frozenset({"task-succeeded", "task-failed", "task-retried", "task-revoked", "task-rejected"})
#: Finished ids remembered for late events of the same id.
_RECENTLY_FINISHED = 1000
#: The label value of a task whose task-received this exporter did not see.
UNKNOWN = "unknown"
#: The label value that replaces new values once a label has ``max_label_values``.
OTHER = "other"
#: Heartbeats a worker may miss before it counts as down (what Celery's monitors use).
_MISSED_HEARTBEATS = 3
#: A worker down this long is dropped from the worker gauges (its counters stay).
FORGET_WORKER_AFTER = 3600.0


@final
class _Bounded:
    """Keeps at most ``limit`` distinct values of one label; later ones become ``other``."""

    def __init__(self, label: str, limit: int) -> None:
        self._label = label
        self._limit = limit
        self._seen: set[str] = set()
        self._warned = False

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            if not self._warned:
                self._warned = True
                log.warning(
                    "more than %d distinct values of the label %r: new ones are counted as %r "
                    "([prometheus] max_label_values)",
                    self._limit,
                    self._label,
                    OTHER,
                )
            return OTHER
        self._seen.add(value)
        return value


@define
class _WorkerSeen:
    last_seen: float
    freq: float
    online: bool
    reported: bool | None  # what worker_up says, to write the gauge only on a change


@final
class TaskMetrics:
    """Prometheus metrics on a registry of their own, fed by :meth:`apply`. Thread-safe.

    :param buckets: upper bounds of the runtime histogram, in seconds.
    :param max_label_values: distinct values kept per label before ``other``.
    :param max_tracked: task ids remembered between task-received and their outcome, to
        label the outcome with the task's name and queue.
    """

    def __init__(
        self, *, buckets: Sequence[float], max_label_values: int = 1000, max_tracked: int = 10_000
    ) -> None:
        self.registry = CollectorRegistry()
        self.tasks = Counter(
            "celeriac_tasks",
            "Task events, by task name, state, queue and worker.",
            ["name", "state", "queue", "hostname"],
            registry=self.registry,
        )
        self.runtime = Histogram(
            "celeriac_task_runtime_seconds",
            "Seconds successful tasks spent running, by task name, queue and worker.",
            ["name", "queue", "hostname"],
            buckets=buckets,
            registry=self.registry,
        )
        self.queue_length = Gauge(
            "celeriac_queue_length",
            "Messages waiting in a queue (delayed ones included), sampled periodically.",
            ["queue"],
            registry=self.registry,
        )
        self.worker_up = Gauge(
            "celeriac_worker_up",
            "1 while a worker is online and heard from, else 0.",
            ["hostname"],
            registry=self.registry,
        )
        self.worker_active = Gauge(
            "celeriac_worker_tasks_active",
            "Requests a worker holds (running or reserved), from its last heartbeat.",
            ["hostname"],
            registry=self.registry,
        )
        self._names = _Bounded("name", max_label_values)
        self._queues = _Bounded("queue", max_label_values)
        self._hosts = _Bounded("hostname", max_label_values)
        self._max_tracked = max_tracked
        self._tracked: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._finished: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._workers: dict[str, _WorkerSeen] = {}
        self._counters: dict[tuple[str, str, str, str], Counter] = {}
        self._histograms: dict[tuple[str, str, str, str], Histogram] = {}
        self._lock = threading.Lock()

    def apply(self, event: Mapping[str, Any], *, now: float | None = None) -> None:
        """Fold one event in; ``now`` is when it was received (default: its timestamp)."""
        type_ = event.get("type")
        if not isinstance(type_, str):
            return
        state = TASK_STATES.get(type_)
        with self._lock:
            hostname = self._hosts(str(event.get("hostname") or UNKNOWN))
            if type_ != "task-sent":  # sent by clients, which are no workers
                self._saw_worker(type_, hostname, event, now)
            if state is None:
                return
            name, queue = self._task_labels(type_, event)
            # Children are cached: prometheus_client's labels() validates on every call,
            # which made it most of an event's cost on a worker's hot path.
            key = (name, state, queue, hostname)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.tasks.labels(*key)
            histogram, runtime = None, event.get("runtime")
            if state == "SUCCESS" and isinstance(runtime, (int, float)) and runtime >= 0:
                seconds = float(runtime)
                histogram = self._histograms.get(key)
                if histogram is None:
                    histogram = self._histograms[key] = self.runtime.labels(name, queue, hostname)
        counter.inc()
        if histogram is not None:
            histogram.observe(seconds)

    def _task_labels(self, type_: str, event: Mapping[str, Any]) -> tuple[str, str]:
        uuid = event.get("uuid")
        key = uuid if isinstance(uuid, str) else None
        name = event.get("name")
        if isinstance(name, str) and name:
            queue = event.get("queue")
            labels = (self._names(name), self._queues(queue if isinstance(queue, str) and queue else UNKNOWN))
        elif key is None:
            return UNKNOWN, UNKNOWN
        else:
            found = self._tracked.get(key) or self._finished.get(key)
            labels = found or (UNKNOWN, UNKNOWN)
        if key is not None and labels[0] != UNKNOWN:
            _remember(self._finished if type_ in _FINAL else self._tracked, key, labels, self._limit(type_))
            if type_ in _FINAL:
                self._tracked.pop(key, None)
        return labels

    def _limit(self, type_: str) -> int:
        return _RECENTLY_FINISHED if type_ in _FINAL else self._max_tracked

    def _saw_worker(self, type_: str, hostname: str, event: Mapping[str, Any], now: float | None) -> None:
        if now is None:
            now = _float(event.get("timestamp"), 0.0) or time.time()
        seen = self._workers.get(hostname)
        if seen is None:
            seen = self._workers[hostname] = _WorkerSeen(last_seen=now, freq=2.0, online=True, reported=None)
        seen.last_seen = now
        seen.online = type_ != "worker-offline"
        if type_ == "worker-heartbeat":
            seen.freq = _float(event.get("freq"), seen.freq)
            active = event.get("active")
            if isinstance(active, int):
                self.worker_active.labels(hostname).set(active)
        self._report(hostname, seen, up=seen.online)

    def _report(self, hostname: str, seen: _WorkerSeen, *, up: bool) -> None:
        if seen.reported is not up:  # a gauge write only when it changes: hot path
            seen.reported = up
            self.worker_up.labels(hostname).set(1 if up else 0)

    def refresh_workers(self, now: float) -> None:
        """Mark workers silent for three heartbeats as down; forget those down for an hour.

        Only the cluster exporter calls this: a worker serving its own metrics is up.
        """
        with self._lock:
            for hostname, seen in list(self._workers.items()):
                silent = now - seen.last_seen
                if silent > FORGET_WORKER_AFTER:
                    del self._workers[hostname]
                    for gauge in (self.worker_up, self.worker_active):
                        # KeyError: never set, no heartbeat reported its active count.
                        with contextlib.suppress(KeyError):
                            gauge.remove(hostname)
                    continue
                self._report(hostname, seen, up=seen.online and silent <= _MISSED_HEARTBEATS * seen.freq)

    def worker_online(self, hostname: str, *, now: float | None = None) -> None:
        """Record a worker as up without an event (a worker's own exporter, at start)."""
        self.apply({"type": "worker-online", "hostname": hostname}, now=now or time.time())

    def set_queue_length(self, queue: str, length: int | None) -> None:
        """Set a queue's length; ``None`` (it could not be read) removes the series.

        An absent series rather than a stale number, so alerts on ``absent()`` notice.
        """
        if length is not None:
            self.queue_length.labels(queue).set(length)
            return
        with contextlib.suppress(KeyError):  # never sampled successfully
            self.queue_length.remove(queue)


def _remember(into: OrderedDict[str, tuple[str, str]], key: str, labels: tuple[str, str], limit: int) -> None:
    into[key] = labels
    into.move_to_end(key)
    while len(into) > limit:
        into.popitem(last=False)


def _float(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
