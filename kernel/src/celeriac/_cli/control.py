"""``celeriac inspect``, ``celeriac control`` and ``celeriac status``: talking to running workers."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from celeriac._cli.app import app_for

console = Console()
err_console = Console(stderr=True)


_TIMEOUT = click.option(
    "--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait for replies."
)
_DESTINATION = click.option("-d", "--destination", multiple=True, help="Only this worker (repeatable).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the replies as JSON.")
INSPECT_COMMANDS = (
    "active",
    "reserved",
    "scheduled",
    "registered",
    "revoked",
    "stats",
    "conf",
    "active_queues",
)


def _ask(
    ctx: click.Context,
    method: str,
    arguments: dict[str, Any],
    timeout: float,
    destination: tuple[str, ...],
    as_json: bool,
) -> None:
    """Broadcast a command, print each worker's reply; exit 1 when nobody answered."""
    app = app_for(ctx.find_root())
    try:
        replies = app.control.broadcast(
            method,
            arguments,
            destination=destination or None,
            reply=True,
            timeout=timeout,
            limit=len(destination) or None,
        )
    finally:
        app.close()
    _show(ctx, replies, timeout, as_json)


def _show(ctx: click.Context, replies: list[dict[str, Any]], timeout: float, as_json: bool) -> None:
    """Print each worker's reply; exit 1 when nobody answered."""
    merged = {host: answer for reply in replies for host, answer in reply.items()}
    if as_json:
        click.echo(json.dumps(merged, indent=2, default=str))
    else:
        for host, answer in sorted(merged.items()):
            console.print(f"[bold]{escape(host)}[/]: ", end="")
            if isinstance(answer, dict | list) and answer:
                console.print_json(json.dumps(answer, default=str))
            else:
                console.print(escape(json.dumps(answer, default=str)), highlight=False)
    if not merged:
        err_console.print(f"no reply within {timeout} s", highlight=False)
        ctx.exit(1)


@click.command()
@click.argument("command", type=click.Choice([*INSPECT_COMMANDS, "ping", "query_task"]))
@click.argument("ids", nargs=-1)
@_TIMEOUT
@_DESTINATION
@_JSON
@click.pass_context
def inspect(
    ctx: click.Context,
    command: str,
    ids: tuple[str, ...],
    timeout: float,
    destination: tuple[str, ...],
    as_json: bool,
) -> None:
    """Ask running workers: ping, active, reserved, scheduled, registered, revoked, stats,
    conf, active_queues, or query_task ID..."""
    arguments: dict[str, Any] = {"ids": list(ids)} if command == "query_task" else {}
    _ask(ctx, command, arguments, timeout, destination, as_json)


@click.group()
def control() -> None:
    """Send commands to running workers."""


def _control_command(name: str, help_text: str, *params: click.Parameter) -> None:
    def run(
        ctx: click.Context, timeout: float, destination: tuple[str, ...], as_json: bool, **arguments: Any
    ) -> None:
        _ask(ctx, name, {k: v for k, v in arguments.items() if v is not None}, timeout, destination, as_json)

    command = click.Command(
        name,
        callback=click.pass_context(run),
        params=[*params, *_common_params()],
        help=help_text,
        short_help=help_text,  # whole in `control --help`: click cuts a help text at "e.g."
    )
    control.add_command(command)


def _common_params() -> list[click.Parameter]:
    return [
        click.Option(
            ["--timeout"], type=float, default=1.0, show_default=True, help="Seconds to wait for replies."
        ),
        click.Option(["-d", "--destination"], multiple=True, help="Only this worker (repeatable)."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the replies as JSON."),
    ]


_control_command("ping", "Ask workers to answer.")
_control_command("shutdown", "Warm-shut-down workers.")
_control_command(
    "rate_limit",
    "Set a task's rate limit in workers (e.g. 10/s; 0 removes it).",
    click.Argument(["task_name"]),
    click.Argument(["rate_limit"]),
)
_control_command(
    "time_limit",
    "Set a task's time limits in workers (process pools).",
    click.Argument(["task_name"]),
    click.Option(["--soft"], type=float),
    click.Option(["--hard"], type=float),
)
_control_command("enable_events", "Turn task events on.")
_control_command("disable_events", "Turn task events off.")
_control_command("add_consumer", "Start consuming a queue.", click.Argument(["queue"]))
_control_command("cancel_consumer", "Stop consuming a queue.", click.Argument(["queue"]))
_control_command(
    "pool_grow", "Add pool slots (process pools).", click.Argument(["n"], type=int, default=1, required=False)
)
_control_command(
    "pool_shrink",
    "Remove pool slots (process pools).",
    click.Argument(["n"], type=int, default=1, required=False),
)
_control_command("pool_restart", "Replace every child of a process pool (prefork).")
_control_command(
    "autoscale",
    "Set autoscale bounds (process pools).",
    click.Argument(["max"], type=int),
    click.Argument(["min"], type=int),
)


@control.command("revoke", short_help="Tell workers not to run these tasks (REVOKED).")
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--terminate", is_flag=True, help="Also stop running ones (process pools only).")
@click.option("--signal", "signal_name", default="SIGTERM", show_default=True, help="Signal for --terminate.")
@click.option("--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait for replies.")
@click.option("-d", "--destination", multiple=True, help="Only this worker (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the replies as JSON.")
@click.pass_context
def control_revoke(
    ctx: click.Context,
    task_ids: tuple[str, ...],
    terminate: bool,
    signal_name: str,
    timeout: float,
    destination: tuple[str, ...],
    as_json: bool,
) -> None:
    """Tell workers not to run these tasks (their state becomes REVOKED) and print what each
    worker answers; a revoke reaches workers that do not answer in time too."""
    app = app_for(ctx.find_root())
    try:
        replies = app.control.revoke(
            list(task_ids),
            terminate=terminate,
            signal=signal_name,
            destination=destination or None,
            reply=True,
            timeout=timeout,
            limit=len(destination) or None,
        )
    finally:
        app.close()
    _show(ctx, replies, timeout, as_json)


@click.command()
@_TIMEOUT
@click.pass_context
def status(ctx: click.Context, timeout: float) -> None:
    """List the workers that answer a ping."""
    app = app_for(ctx)
    try:
        replies = app.control.ping(timeout=timeout)
    finally:
        app.close()
    hosts = sorted(host for reply in replies for host in reply)
    for host in hosts:
        click.echo(f"{host}: OK")
    click.echo(f"\n{len(hosts)} node{'s' if len(hosts) != 1 else ''} online.")
    if not hosts:
        ctx.exit(1)
