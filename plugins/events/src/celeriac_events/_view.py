"""The live terminal view of ``celeriac events``: workers, task counts and recent tasks."""

from __future__ import annotations

import time

from rich.console import Group
from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from celeriac import states
from celeriac_events._state import ClusterState
from celeriac_events._state import TaskInfo

_STATE_STYLES = {
    states.SUCCESS: "green",
    states.FAILURE: "bold red",
    states.RETRY: "yellow",
    states.REVOKED: "magenta",
    states.REJECTED: "magenta",
    states.STARTED: "cyan",
    states.RECEIVED: "blue",
}


def render(state: ClusterState, now: float, *, tasks: int = 20) -> RenderableType:
    """The whole screen: a workers table, counts by state, and the ``tasks`` most recent tasks."""
    return Group(_workers(state, now), _counts(state), _tasks(state, tasks))


def _workers(state: ClusterState, now: float) -> Table:
    table = Table("worker", "status", "active", "processed", "load", "last seen", "software", title="Workers")
    for worker in sorted(state.workers.values(), key=lambda w: w.hostname):
        alive = worker.alive(now)
        seen = f"{max(0.0, now - worker.last_seen):.0f}s ago"
        table.add_row(
            escape(worker.hostname),
            Text("online", "green") if alive else Text("offline", "red"),
            str(worker.active),
            str(worker.processed),
            " ".join(f"{x:.2f}" for x in worker.loadavg) or "-",
            seen,
            escape(" ".join(part for part in (worker.sw_ident, worker.sw_ver) if part) or "-"),
        )
    if not state.workers:
        table.add_row("no worker seen yet", "", "", "", "", "", "")
    return table


def _counts(state: ClusterState) -> Text:
    text = Text(f"{len(state.tasks)} tasks, {state.event_count} events: ")
    for name, count in sorted(state.task_counts.items()):
        text.append(f"{name} {count}  ", _STATE_STYLES.get(name, ""))
    return text


def _tasks(state: ClusterState, limit: int) -> Table:
    table = Table(
        "uuid", "name", "state", "worker", "received", "runtime", "args", "info", title="Recent tasks"
    )
    for task in state.recent_tasks(limit):
        table.add_row(
            escape(task.uuid),
            escape(task.name or "?"),
            Text(task.state, _STATE_STYLES.get(task.state, "")),
            escape(task.worker or "-"),
            _clock(task.received),
            "-" if task.runtime is None else f"{task.runtime:.3f}s",
            escape(_short(f"{task.args or ''} {task.kwargs or ''}".strip())),
            escape(_short(_info(task))),
        )
    return table


def _info(task: TaskInfo) -> str:
    if task.state == states.SUCCESS:
        return task.result or ""
    return task.exception or ""


def _clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%H:%M:%S", time.localtime(timestamp))


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
