"""``celeriac events``: watch the cluster live, or dump its raw events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from celeriac.plugin import Broadcaster
from celeriac.plugin import CeleriacError
from celeriac_events._receiver import EventReceiver
from celeriac_events._receiver import subscribe_events
from celeriac_events._state import ClusterState
from celeriac_events._view import render
from celeriac_events._wire import EVENT_CHANNEL

#: Longest wait for events before the loop checks ``--duration`` again.
_POLL = 0.5


@click.command("events")
@click.option("--dump", is_flag=True, help="Print each event as one JSON line instead of the live view.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--max-tasks",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Tasks the live view remembers.",
)
@click.pass_context
def events_command(ctx: click.Context, dump: bool, duration: float | None, max_tasks: int) -> None:
    """Watch workers and tasks live from their events (workers need -E), or --dump them."""
    from celeriac.plugin import load_app

    root: dict[str, Any] = ctx.find_root().obj or {}
    app = load_app(root.get("app"), root.get("config"))
    deadline = None if duration is None else time.monotonic() + duration
    try:
        transport = app.transport
        if not isinstance(transport, Broadcaster):
            scheme = app.config.broker.partition(":")[0]
            raise CeleriacError(
                f"the {scheme} broker has no broadcast channel, so it carries no events; "
                'use a broker with fan-out, or have workers write a file with [events] sinks = ["jsonl"]'
            )
        with subscribe_events(transport, app.codec) as receiver:
            click.echo(f"listening for events on {EVENT_CHANNEL} (Ctrl-C to stop)", err=True)
            if dump:
                _dump(receiver, deadline)
            else:
                _watch(receiver, deadline, max_tasks)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()


def _batches(receiver: EventReceiver, deadline: float | None) -> Iterator[list[dict[str, Any]]]:
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        yield receiver.get(_POLL if remaining is None else min(_POLL, remaining))


def _dump(receiver: EventReceiver, deadline: float | None) -> None:
    for events in _batches(receiver, deadline):
        for event in events:
            click.echo(json.dumps(event, default=repr))


def _watch(receiver: EventReceiver, deadline: float | None, max_tasks: int) -> None:
    from rich.live import Live

    state = ClusterState(max_tasks=max_tasks)
    # Live redraws from its own thread: reads and folds must not interleave.
    lock = threading.Lock()

    def screen() -> Any:
        with lock:
            return render(state, time.time())

    with Live(get_renderable=screen, refresh_per_second=2):
        for events in _batches(receiver, deadline):
            if events:
                now = time.time()
                with lock:
                    state.apply_all(events, now=now)
