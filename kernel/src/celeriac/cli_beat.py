"""``celeriac beat``: the periodic-task scheduler as a process of its own."""

from __future__ import annotations

import logging
import sys

import click

from celeriac.cli_app import app_for


@click.command()
@click.option("--schedule-store", help="URL of the store for last runs and the leader lock.")
@click.option("-l", "--loglevel", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("--max-interval", type=float, help="Longest sleep between two looks at the schedule (s).")
@click.pass_context
def beat(
    ctx: click.Context, schedule_store: str | None, loglevel: str | None, max_interval: float | None
) -> None:
    """Send periodic tasks on schedule; several instances elect one leader.

    SIGTERM or SIGINT stops (giving the lock up at once); SIGHUP reloads the schedule.
    """
    from celeriac.beat import run_beat

    app = app_for(ctx)
    logging.basicConfig(
        level=(loglevel or app.config.worker.loglevel).upper(),
        format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s",
        stream=sys.stderr,
    )
    try:
        code = run_beat(app, schedule_store=schedule_store, max_interval=max_interval)
    finally:
        app.close()
    sys.exit(code)
