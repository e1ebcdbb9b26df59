"""``celeriac beat``: the periodic-task scheduler as a process of its own, and
``celeriac beat schedule``: the entries kept in its store, edited while it runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from celeriac._cli.app import app_for
from celeriac._cli.logs import setup_logging
from celeriac._model.config import toml_literal
from celeriac._model.errors import ConfigError


@click.group(invoke_without_command=True)
@click.option("--schedule-store", help="URL of the store for last runs, entries and the leader lock.")
@click.option("-l", "--loglevel", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("--max-interval", type=float, help="Longest sleep between two looks at the schedule (s).")
@click.pass_context
def beat(
    ctx: click.Context, schedule_store: str | None, loglevel: str | None, max_interval: float | None
) -> None:
    """Send periodic tasks on schedule; several instances elect one leader.

    SIGTERM or SIGINT stops (giving the lock up at once); SIGHUP reloads the schedule from
    the config file; entries added with `celeriac beat schedule add` are picked up within a
    second.
    """
    ctx.obj["schedule_store"] = schedule_store
    if ctx.invoked_subcommand is not None:
        return
    from celeriac._beat.run import run_beat

    app = app_for(ctx)
    setup_logging(loglevel or app.config.worker.loglevel)
    try:
        code = run_beat(app, schedule_store=schedule_store, max_interval=max_interval)
    finally:
        app.close()
    sys.exit(code)


@beat.group()
def schedule() -> None:
    """List, add and remove entries while beat runs (kept in the schedule store)."""


def _stored(ctx: click.Context) -> Any:
    from celeriac._beat.schedule_edit import StoredSchedule

    app = app_for(ctx)
    return StoredSchedule(app, schedule_store=ctx.obj.get("schedule_store"))


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_entries(ctx: click.Context, as_json: bool) -> None:
    """Every entry beat runs: from code, the config file and the store, with its last run."""
    with _stored(ctx) as stored:
        rows = stored.all_entries()
        last = {name: stored.last_run_at(name) for name, _, _ in rows}
        if as_json:
            click.echo(
                json.dumps(
                    [{"name": n, "source": s, "table": t, "last_run_at": last[n]} for n, s, t in rows],
                    indent=2,
                )
            )
            return
        table = Table("name", "source", "entry", "last run", title=f"beat entries ({escape(stored.url)})")
        for name, source, stored_table in rows:
            when = last[name]
            shown = json.dumps(stored_table) if stored_table is not None else "(see the config file or code)"
            table.add_row(
                escape(name),
                escape(source),
                escape(shown),
                dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds") if when else "never",
            )
        Console().print(table)


@schedule.command("add")
@click.argument("name")
@click.option(
    "--task", "task_name", required=True, help="The task's registered name, e.g. proj.tasks.report."
)
@click.option(
    "-s",
    "--schedule",
    "schedules",
    multiple=True,
    metavar="KEY=VALUE",
    help="The schedule, as in TOML: every=30s, cron='0 3 * * *', clocked=2030-01-01T00:00:00Z ...",
)
@click.option("--args", "args_json", help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments, a JSON object.")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="queue=, priority=, expires=, missed= ...",
)
@click.pass_context
def add_entry(
    ctx: click.Context,
    name: str,
    task_name: str,
    schedules: tuple[str, ...],
    args_json: str | None,
    kwargs_json: str | None,
    options: tuple[str, ...],
) -> None:
    """Add (or replace) the entry NAME; every running beat sends it from its next due time."""
    table: dict[str, Any] = {"task": task_name}
    try:
        if args_json is not None:
            table["args"] = json.loads(args_json)
        if kwargs_json is not None:
            table["kwargs"] = json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    for pair in (*schedules, *options):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE")
        table[key.strip()] = toml_literal(value.strip())
    with _stored(ctx) as stored:
        entry = stored.add(name, table)
    click.echo(f"added {entry.name}: {entry.task} ({stored.url})")


@schedule.command("remove")
@click.argument("name")
@click.pass_context
def remove_entry(ctx: click.Context, name: str) -> None:
    """Remove the stored entry NAME (entries from code or the config file stay)."""
    with _stored(ctx) as stored:
        if not stored.remove(name):
            raise ConfigError(f"the schedule store {stored.url} has no entry {name!r}")
    click.echo(f"removed {name}")
