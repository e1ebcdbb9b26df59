"""The dashboard's view of the cluster: events folded into state, history and live pushes.

One thread reads the broker's ``celeryev`` channel (celeriac-events' receiver, so Celery
workers count too), folds events into a :class:`ClusterState`, writes what changed to the
history and tells open pages. A second thread samples queue lengths. A task whose events
arrive after it left memory (a long retry, a restart) is first rebuilt from its stored
events, so its row never loses what earlier events said.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

import attrs

from celeriac.plugin import Broadcaster
from celeriac.plugin import CeleriacError
from celeriac_dashboard._history import History
from celeriac_dashboard._live import Hub

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac_dashboard._config import DashboardConfig
    from celeriac_events import EventReceiver

log = logging.getLogger("celeriac.dashboard")

#: Seconds between two prunings of the history.
_PRUNE_EVERY = 30.0


@final
class Monitor:
    """Everything the web app reads: state (under :attr:`lock`), history, hub, metrics."""

    def __init__(self, app: Celeriac, settings: DashboardConfig) -> None:
        from celeriac_events import ClusterState
        from celeriac_events import WorkerInfo
        from celeriac_prometheus import DEFAULT_BUCKETS
        from celeriac_prometheus import TaskMetrics

        self.app = app
        self.settings = settings
        self.state = ClusterState(max_tasks=settings.memory_tasks)
        self.lock = threading.Lock()
        self.history = History(settings.history, max_tasks=settings.max_tasks)
        self.hub = Hub()
        self.metrics = TaskMetrics(buckets=DEFAULT_BUCKETS)
        self.queues: dict[str, None] = dict.fromkeys((app.config.default_queue, *settings.queues))
        self.queue_lengths: dict[str, int | None] = {}
        self.started = time.time()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for saved in self.history.workers():
            known = {field.name for field in attrs.fields(WorkerInfo)}
            saved["loadavg"] = tuple(saved.get("loadavg") or ())
            self.state.workers[saved["hostname"]] = WorkerInfo(
                **{k: v for k, v in saved.items() if k in known}
            )

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to events and start the two threads.

        :raises CeleriacError: when the broker has no broadcast channel (so no events).
        """
        from celeriac_events import subscribe_events

        transport = self.app.transport
        if not isinstance(transport, Broadcaster):
            scheme = self.app.config.broker.partition(":")[0]
            raise CeleriacError(f"the {scheme} broker has no broadcast channel, so it carries no events")
        receiver = subscribe_events(transport, self.app.codec)
        self._threads = [
            threading.Thread(target=self._read, args=(receiver,), name="dashboard-events", daemon=True),
            threading.Thread(target=self._sample, name="dashboard-queues", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.history.close()

    def _read(self, receiver: EventReceiver) -> None:
        interval = self.settings.live_interval
        pending: list[dict[str, Any]] = []
        flush_at = time.monotonic() + interval
        prune_at = time.monotonic() + _PRUNE_EVERY
        with receiver:
            while not self._stop.is_set():
                try:
                    pending.extend(receiver.get(max(0.0, min(interval, flush_at - time.monotonic()))))
                except Exception as exc:  # a broker outage: say so, keep trying
                    log.warning("reading events failed: %s", exc)
                    self._stop.wait(1.0)
                if time.monotonic() < flush_at:
                    continue
                if pending:
                    try:
                        self.ingest(pending, now=time.time())
                    except Exception:
                        log.exception("could not record %d events", len(pending))
                    pending = []
                flush_at = time.monotonic() + interval
                if time.monotonic() >= prune_at:
                    self.history.prune(time.time())
                    prune_at = time.monotonic() + _PRUNE_EVERY

    def ingest(self, events: Sequence[dict[str, Any]], *, now: float) -> None:
        """Fold ``events`` in, store what changed and tell the pages; the event thread's work."""
        with self.lock:
            missing = {
                event["uuid"]
                for event in events
                if isinstance(event.get("uuid"), str) and event["uuid"] not in self.state.tasks
            }
        earlier = self.history.events_of(missing) if missing else []
        changed: dict[str, None] = {}
        workers: dict[str, None] = {}
        with self.lock:
            self.state.apply_all(earlier, now=now)
            for event in events:
                self.state.apply(event, now=now)
                self.metrics.apply(event, now=now)
                if isinstance(event.get("uuid"), str):
                    changed[event["uuid"]] = None
                if isinstance(event.get("hostname"), str) and event.get("type") != "task-sent":
                    workers[event["hostname"]] = None
                queue = event.get("queue") or event.get("routing_key")
                if isinstance(queue, str) and queue and queue not in self.queues:
                    self.queues[queue] = None
            rows = [attrs.asdict(self.state.tasks[uuid]) for uuid in changed if uuid in self.state.tasks]
            worker_rows = [
                attrs.asdict(self.state.workers[name]) for name in workers if name in self.state.workers
            ]
        self.history.record(rows, events, worker_rows)
        newest = max((float(e.get("timestamp") or 0) for e in events), default=0.0)
        self.hub.publish({"tasks": list(changed)[-200:], "workers": list(workers), "newest": newest})

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sample_queues()
            self._stop.wait(self.settings.sample_interval)

    def sample_queues(self) -> dict[str, int | None]:
        """Read every known queue's length now, keep it, and tell the pages."""
        lengths: dict[str, int | None] = {}
        for queue in list(self.queues):
            try:
                lengths[queue] = self.app.transport.queue_length(queue)
            except Exception as exc:
                log.warning("could not read the length of queue %r: %s", queue, exc)
                lengths[queue] = None
            self.metrics.set_queue_length(queue, lengths[queue])
        self.queue_lengths = lengths
        self.history.sample_queues(lengths, time.time())
        self.hub.publish({"queues": True})
        return lengths

    def watch_queue(self, queue: str) -> None:
        self.queues.setdefault(queue, None)

    # --- reading ------------------------------------------------------------------------

    def worker_rows(self, now: float) -> list[dict[str, Any]]:
        """Every worker seen, with ``alive``; the events' view (Flower's workers table)."""
        with self.lock:
            workers = sorted(self.state.workers.values(), key=lambda w: w.hostname)
            rows = [{**attrs.asdict(w), "alive": w.alive(now)} for w in workers]
        for row in rows:
            counts = self.history.worker_counts(row["hostname"])
            row.update(counts)
        return rows
