"""The ``celeriac`` command line (click), with subcommands added by plugins."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from attrs import asdict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from celeriac.app import Celeriac
from celeriac.errors import CeleriacError
from celeriac.plugins import make_plugins

console = Console()
err_console = Console(stderr=True)


def load_app(app_path: str | None, config: str | None, **overrides: Any) -> Celeriac:
    """Import ``module`` or ``module:attribute`` and return its Celeriac app.

    With no path, ``$CELERIAC_APP`` is used, and failing that a plain app built from the
    configuration (enough to send tasks by name, read results or inspect queues).
    """
    app_path = app_path or os.environ.get("CELERIAC_APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if not app_path:
        return _app_from_imports(Celeriac(config=config, **overrides))
    module_name, _, attribute = app_path.partition(":")
    if config:
        # The app reads its configuration when its module creates it: point it at the file
        # first. An app created with an explicit config= path in code keeps that one.
        os.environ["CELERIAC_CONFIG"] = config
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.UsageError(f"cannot import app module {module_name!r}: {exc}") from exc
    if attribute:
        app = getattr(module, attribute, None)
    else:
        found = [value for value in vars(module).values() if isinstance(value, Celeriac)]
        app = found[0] if len(found) == 1 else None
        if len(found) > 1:
            raise click.UsageError(f"{module_name} has several apps; name one: -A {module_name}:NAME")
    if not isinstance(app, Celeriac):
        raise click.UsageError(f"{app_path!r} is not a Celeriac app (use -A module:attribute)")
    if config and app.config_file is not None and app.config_file.resolve() != Path(config).resolve():
        err_console.print(
            f"warning: {app_path} reads {app.config_file}, not --config {config}", highlight=False
        )
    if app.import_path is None:
        name = attribute or next(key for key, value in vars(module).items() if value is app)
        app.import_path = f"{module_name}:{name}"
    for name in app.config.imports:
        importlib.import_module(name)
    return app


def _app_from_imports(plain: Celeriac) -> Celeriac:
    """With no ``-A``: the one app defined by the modules in ``imports``, else ``plain``.

    Tasks register on the app their module creates, so a worker started as plain
    ``celeriac worker`` with ``imports = ["proj.tasks"]`` must use that module's app.
    """
    apps: list[Celeriac] = []
    for name in plain.config.imports:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.UsageError(f"cannot import {name!r} listed in 'imports': {exc}") from exc
        apps.extend(
            value for value in vars(module).values() if isinstance(value, Celeriac) and value not in apps
        )
    if len(apps) > 1:
        raise click.UsageError("the modules in 'imports' define several apps; choose one with -A module:NAME")
    return apps[0] if apps else plain


class CeleriacGroup(click.Group):
    """Adds plugin commands, and turns celeriac errors into one clear line and exit code 2."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """Commands of the plugins the configuration enables, found once per invocation.

        Loading is lenient here: a broken plugin must not hide the others' commands; the
        command that builds an app reports it.
        """
        cached: dict[str, click.Command] | None = ctx.meta.get("celeriac.plugin_commands")
        if cached is not None:
            return cached
        from celeriac.config import plugins_config
        from celeriac.config import read_layers

        try:
            raw = read_layers(ctx.params.get("config_path"))
            plugins = make_plugins(_lenient(plugins_config(raw)))
            commands = {command.name: command for command in plugins.cli_commands() if command.name}
        except CeleriacError as exc:
            err_console.print(f"warning: plugin commands unavailable: {escape(str(exc))}", highlight=False)
            commands = {}
        ctx.meta["celeriac.plugin_commands"] = commands
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CeleriacError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(2)


@click.group(cls=CeleriacGroup)
@click.option("-A", "--app", "app_path", envvar="CELERIAC_APP", help="The app: module or module:attribute.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.version_option(package_name="celeriac")
@click.pass_context
def main(ctx: click.Context, app_path: str | None, config_path: str | None) -> None:
    """celeriac: a distributed task queue."""
    ctx.obj = {"app": app_path, "config": config_path}


def _app(ctx: click.Context, **overrides: Any) -> Celeriac:
    return load_app(ctx.obj["app"], ctx.obj["config"], **overrides)


@main.command()
@click.option("-Q", "--queues", help="Comma-separated queues to consume.")
@click.option("-c", "--concurrency", type=int, help="Tasks run at once (default: CPU count).")
@click.option("-P", "--pool", help="Execution pool (threads, solo, ...).")
@click.option("-l", "--loglevel", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("-n", "--hostname", help="Worker name (default celeriac@HOST).")
@click.option("--prefetch", type=int, help="Messages reserved beyond those running.")
@click.option("--statedb", type=click.Path(dir_okay=False), help="File keeping revoked ids across restarts.")
@click.option("-E", "--events", "send_events", is_flag=True, default=None, help="Send monitoring events.")
@click.option("--graph", is_flag=True, help="Print the bootstep graph (Graphviz DOT) and exit.")
@click.pass_context
def worker(
    ctx: click.Context,
    queues: str | None,
    concurrency: int | None,
    pool: str | None,
    loglevel: str | None,
    hostname: str | None,
    prefetch: int | None,
    statedb: str | None,
    send_events: bool | None,
    graph: bool,
) -> None:
    """Start a worker."""
    app = _app(ctx)
    instance = app.worker(
        queues=tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else None,
        concurrency=concurrency,
        pool=pool,
        loglevel=loglevel,
        hostname=hostname,
        prefetch=prefetch,
        statedb=statedb,
        send_events=send_events,
    )
    if graph:
        click.echo(instance.blueprint().dot())
        return
    _setup_logging(instance.config.worker.loglevel)
    _banner(app, instance)
    try:
        code = instance.run()
    finally:
        app.close()
    sys.exit(code)


@main.command()
@click.argument("task")
@click.option("--args", "args_json", default="[]", help="JSON list of positional arguments.")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments.")
@click.option("--countdown", type=float, help="Seconds to wait before running.")
@click.option("--expires", type=float, help="Seconds after which the task is not run.")
@click.option("-Q", "--queue", help="Queue to send to.")
@click.option("--priority", type=int, help="0-9, higher first.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait with --wait.")
@click.pass_context
def call(
    ctx: click.Context,
    task: str,
    args_json: str,
    kwargs_json: str,
    countdown: float | None,
    expires: float | None,
    queue: str | None,
    priority: int | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Send TASK by name and print its id (and its result with --wait)."""
    args = _json_arg(args_json, "--args", list)
    kwargs = _json_arg(kwargs_json, "--kwargs", dict)
    app = _app(ctx)
    result = app.send_task(
        task, args, kwargs, countdown=countdown, expires=expires, queue=queue, priority=priority
    )
    click.echo(result.id)
    if wait:
        click.echo(json.dumps(result.get(timeout=timeout, propagate=False), default=repr))
    app.close()


@main.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Wait until the task is ready.")
@click.option("--timeout", type=float, default=None)
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the traceback of a failure.")
@click.pass_context
def result(ctx: click.Context, task_id: str, wait: bool, timeout: float | None, show_traceback: bool) -> None:
    """Show the state and result of a task."""
    app = _app(ctx)
    handle = app.AsyncResult(task_id)
    if wait:
        handle.get(timeout=timeout, propagate=False)
    state = handle.state
    value = handle.result
    click.echo(
        f"{state} {json.dumps(value, default=repr) if not isinstance(value, BaseException) else repr(value)}"
    )
    if show_traceback and handle.traceback:
        click.echo(handle.traceback)
    app.close()


@main.command()
@click.option("-Q", "--queues", help="Comma-separated queues (default: the default queue).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, queues: str | None, force: bool) -> None:
    """Delete every waiting message from queues."""
    app = _app(ctx)
    names = [q.strip() for q in queues.split(",")] if queues else [app.config.default_queue]
    if not force:
        click.confirm(f"Delete all waiting messages in {', '.join(names)}?", abort=True)
    for name in names:
        click.echo(f"{name}: purged {app.transport.purge(name)} messages")
    app.close()


@main.group("dead-letters")
def dead_letters() -> None:
    """List or requeue messages that could not be processed."""


@dead_letters.command("list")
@click.option("-Q", "--queue", help="Only this queue.")
@click.option("--limit", type=int, default=100)
@click.pass_context
def dead_letters_list(ctx: click.Context, queue: str | None, limit: int) -> None:
    """List dead-lettered messages with the reason each was refused."""
    app = _app(ctx.find_root())
    letters = app.transport.dead_letters(queue, limit)
    table = Table("id", "queue", "task", "task id", "reason")
    for letter in letters:
        headers = letter.envelope.headers
        cells = (letter.id, letter.queue, headers.get("task", "?"), headers.get("id", "?"), letter.reason)
        table.add_row(*(escape(str(cell)) for cell in cells))
    console.print(table if letters else "no dead letters")
    app.close()


@dead_letters.command("requeue")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def dead_letters_requeue(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Put dead-lettered messages back on their queues."""
    app = _app(ctx.find_root())
    for dead_id in ids:
        click.echo(f"{dead_id}: {'requeued' if app.transport.requeue_dead_letter(dead_id) else 'not found'}")
    app.close()


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
    app = _app(ctx.find_root())
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


@main.command()
@click.argument("command", type=click.Choice([*INSPECT_COMMANDS, "query_task"]))
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
    """Ask running workers: active, reserved, scheduled, registered, revoked, stats, conf,
    active_queues, or query_task ID..."""
    arguments: dict[str, Any] = {"ids": list(ids)} if command == "query_task" else {}
    _ask(ctx, command, arguments, timeout, destination, as_json)


@main.group()
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
_control_command(
    "autoscale",
    "Set autoscale bounds (process pools).",
    click.Argument(["max"], type=int),
    click.Argument(["min"], type=int),
)


@control.command("revoke")
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--terminate", is_flag=True, help="Also stop running ones (process pools only).")
@click.pass_context
def control_revoke(ctx: click.Context, task_ids: tuple[str, ...], terminate: bool) -> None:
    """Tell every worker not to run these tasks; their state becomes REVOKED."""
    app = _app(ctx.find_root())
    try:
        app.control.revoke(list(task_ids), terminate=terminate)
    finally:
        app.close()
    click.echo(f"revoked {len(task_ids)} task(s)")


@main.command()
@_TIMEOUT
@click.pass_context
def status(ctx: click.Context, timeout: float) -> None:
    """List the workers that answer a ping."""
    app = _app(ctx)
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


@main.command()
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """List installed plugins, what each provides, and any that failed to load."""
    from celeriac.config import plugins_config
    from celeriac.config import read_layers

    raw = read_layers(ctx.obj["config"])
    manager = make_plugins(_lenient(plugins_config(raw)))
    table = Table("plugin", "module", "provides")
    for info in manager.describe():
        table.add_row(escape(info.name), escape(info.module), escape("\n".join(info.provides)) or "-")
    console.print(table)
    for failure in manager.failures:
        console.print(
            f"[bold red]failed[/] {escape(failure.name)}: {escape(failure.reason)}",
            highlight=False,
            soft_wrap=True,
        )
    if manager.failures:
        ctx.exit(1)


def _lenient(config: Any) -> Any:
    from attrs import evolve

    # Listing must show every broken plugin, not stop at the first.
    return evolve(config, strict=False)


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the effective config as JSON.")
@click.pass_context
def config_command(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration and where each value came from."""
    app = _app(ctx)
    data = asdict(app.config, filter=lambda attribute, _: attribute.name not in ("provenance", "sections"))
    data.update({name: asdict(section) for name, section in app.config.sections.items()})
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"# file: {app.config_file or 'none'}")
    table = Table("key", "value", "from")
    for key, value in _flatten(data):
        table.add_row(key, escape(json.dumps(value, default=str)), escape(app.config.source_of(key)))
    console.print(table)


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _json_arg(text: str, option: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from exc
    if not isinstance(value, kind):
        raise click.BadParameter(f"must be a JSON {'list' if kind is list else 'object'}", param_hint=option)
    return value


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s",
        stream=sys.stderr,
    )


def _banner(app: Celeriac, instance: Any) -> None:
    cfg = instance.config
    err_console.print(
        f"[bold green]celeriac[/] {instance.hostname}\n"
        f"  app:          {app.main or '-'}\n"
        f"  broker:       {cfg.broker}\n"
        f"  results:      {app.result_store_url or 'disabled'}\n"
        f"  pool:         {cfg.worker.pool} x {cfg.worker.concurrency}\n"
        f"  queues:       {', '.join(instance.queues)}\n"
        f"  tasks:        {', '.join(sorted(app.tasks)) or 'none'}",
        highlight=False,
    )
