"""The ``celeriac`` command line (click), with subcommands added by plugins."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import click
from attrs import asdict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from celeriac._cli.app import app_for
from celeriac._cli.beat import beat
from celeriac._cli.control import control
from celeriac._cli.control import inspect
from celeriac._cli.control import status
from celeriac._cli.logs import setup_logging
from celeriac._cli.worker_flags import applied_flags
from celeriac._cli.worker_flags import expand_hostname
from celeriac._cli.worker_flags import worker_flag_options
from celeriac._client.app import Celeriac
from celeriac._contract.plugins import make_plugins
from celeriac._contract.protocols import DeadLetterPurger
from celeriac._model import states
from celeriac._model.errors import CeleriacError
from celeriac._model.redaction import redact
from celeriac._model.redaction import redact_url

console = Console()
err_console = Console(stderr=True)


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
        from celeriac._model.config import plugins_config
        from celeriac._model.config import read_layers

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
        """Every failure but a usage error (click's own report, exit 2) becomes one ``error:`` line.

        That includes a broker's or a plugin's own exceptions (a connection refused ...):
        no traceback, the message with URL passwords masked. ``CELERIAC_TRACEBACK=1`` shows
        the traceback of an unexpected one.
        """
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            if exc.option_name in ("-A", "--app") and ctx.invoked_subcommand:
                raise click.UsageError(
                    f"No such option {exc.option_name!r} after the command: -A goes before it, "
                    f"as in Celery 5: celeriac -A proj {ctx.invoked_subcommand} ...",
                    exc.ctx,
                ) from exc
            raise
        except CeleriacError as exc:
            _fail(ctx, str(exc))
        except click.UsageError:
            raise
        except click.ClickException as exc:
            _fail(ctx, exc.format_message())
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("CELERIAC_TRACEBACK"):
                raise
            _fail(ctx, f"{type(exc).__name__}: {exc}")


def _fail(ctx: click.Context, message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(redact_url(message))}", highlight=False, soft_wrap=True)
    ctx.exit(2)


@click.group(cls=CeleriacGroup)
@click.option("-A", "--app", "app_path", envvar="CELERIAC_APP", help="The app: module or module:attribute.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.version_option(package_name="celeriac")
@click.pass_context
def main(ctx: click.Context, app_path: str | None, config_path: str | None) -> None:
    """celeriac: a distributed task queue."""
    ctx.obj = {"app": app_path, "config": config_path}
    # A one-shot command configures no logging: Python would print the WARNING lines of a
    # client retrying a broker that is down, before the command's one `error:` line. Commands
    # that log (worker, beat) configure handlers of their own, which this does not touch.
    if logging.lastResort is not None:
        logging.lastResort.setLevel(logging.ERROR)


@main.command()
@click.option("-Q", "--queues", help="Comma-separated queues to consume.")
@click.option("-c", "--concurrency", type=int, help="Tasks run at once (default: CPU count).")
@click.option("-P", "--pool", help="Execution pool (threads, solo, ...).")
@click.option("-l", "--loglevel", help="DEBUG, INFO, WARNING, ERROR.")
@click.option("-f", "--logfile", type=click.Path(dir_okay=False), help="Log to this file instead of stderr.")
@click.option("-n", "--hostname", help="Worker name (default celeriac@HOST); %h, %n, %d expand as in Celery.")
@click.option("--prefetch", type=int, help="Messages reserved beyond those running.")
@click.option("--statedb", type=click.Path(dir_okay=False), help="File keeping revoked ids across restarts.")
@click.option("-E", "--events", "send_events", is_flag=True, default=None, help="Send monitoring events.")
@click.option("-B", "--beat", is_flag=True, default=None, help="Also run beat (periodic tasks) here.")
@worker_flag_options
@click.option("--graph", is_flag=True, help="Print the bootstep graph (Graphviz DOT) and exit.")
@click.pass_context
def worker(
    ctx: click.Context,
    /,
    queues: str | None,
    concurrency: int | None,
    pool: str | None,
    loglevel: str | None,
    logfile: str | None,
    hostname: str | None,
    prefetch: int | None,
    statedb: str | None,
    send_events: bool | None,
    beat: bool | None,
    graph: bool,
    **flags: Any,
) -> None:
    """Start a worker. Celery's flags (--autoscale, --max-tasks-per-child, --time-limit ...)
    set the configuration keys they stand for; `celeriac config` takes them too."""
    with applied_flags(flags, _note):
        app = app_for(ctx)
        instance = app.worker(
            queues=tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else None,
            concurrency=concurrency,
            pool=pool,
            loglevel=loglevel,
            hostname=expand_hostname(hostname) if hostname else None,
            prefetch=prefetch,
            statedb=statedb,
            send_events=send_events,
            beat=beat,
        )
        if graph:
            click.echo(instance.blueprint().dot())
            return
        setup_logging(instance.config.worker.loglevel, logfile)
        _banner(app, instance)
        try:
            code = instance.run()
        finally:
            app.close()
        if instance.shutdown.restart:  # --autoreload: the same command, on the new code
            err_console.print("autoreload: starting again", highlight=False)
            os.execv(sys.executable, sys.orig_argv)
    sys.exit(code)


def _note(text: str) -> None:
    err_console.print(escape(text), highlight=False)


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
    app = app_for(ctx)
    result = app.send_task(
        task, args, kwargs, countdown=countdown, expires=expires, queue=queue, priority=priority
    )
    click.echo(result.id)
    if wait:
        click.echo(json.dumps(result.get(timeout=timeout, propagate=False), default=repr))
        failed = result.state != states.SUCCESS
    app.close()
    if wait and failed:
        ctx.exit(1)  # the task failed, was refused (not registered) or revoked: not a success


@main.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Wait until the task is ready.")
@click.option("--timeout", type=float, default=None)
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the traceback of a failure.")
@click.pass_context
def result(ctx: click.Context, task_id: str, wait: bool, timeout: float | None, show_traceback: bool) -> None:
    """Show the state and result of a task."""
    app = app_for(ctx)
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
    app = app_for(ctx)
    names = [q.strip() for q in queues.split(",")] if queues else [app.config.default_queue]
    if not force:
        click.confirm(f"Delete all waiting messages in {', '.join(names)}?", abort=True)
    for name in names:
        click.echo(f"{name}: purged {app.transport.purge(name)} messages")
    app.close()


@main.group("dead-letters")
def dead_letters() -> None:
    """List, requeue or purge messages that could not be processed."""


@dead_letters.command("list")
@click.option("-Q", "--queue", help="Only this queue.")
@click.option("--limit", type=int, default=100)
@click.pass_context
def dead_letters_list(ctx: click.Context, queue: str | None, limit: int) -> None:
    """List dead-lettered messages with the reason each was refused."""
    app = app_for(ctx.find_root())
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
    app = app_for(ctx.find_root())
    for dead_id in ids:
        click.echo(f"{dead_id}: {'requeued' if app.transport.requeue_dead_letter(dead_id) else 'not found'}")
    app.close()


@dead_letters.command("purge")
@click.option("-Q", "--queue", help="Only this queue (default: every queue 'dead-letters list' shows).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def dead_letters_purge(ctx: click.Context, queue: str | None, yes: bool) -> None:
    """Delete dead-lettered messages for good, on transports that can (DeadLetterPurger)."""
    app = app_for(ctx.find_root())
    try:
        transport = app.transport
        if not isinstance(transport, DeadLetterPurger):
            scheme = app.config.broker.partition(":")[0]
            raise CeleriacError(f"the {scheme} transport cannot purge dead letters")
        if not yes:
            where = f"of queue {queue}" if queue else "of every queue"
            click.confirm(f"Delete the dead letters {where} for good?", abort=True)
        click.echo(f"purged {transport.purge_dead_letters(queue)} dead letters")
    finally:
        app.close()


@main.command()
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """List installed plugins, what each provides, and any that failed to load."""
    from celeriac._model.config import plugins_config
    from celeriac._model.config import read_layers

    raw = read_layers(ctx.obj["config"])
    manager = make_plugins(_lenient(plugins_config(raw)))
    table = Table("plugin", "module")
    # Whole, however narrow the terminal: schemes listed with spaces so that they wrap.
    table.add_column("provides", overflow="fold")
    for info in manager.describe():
        provides = "\n".join(item.replace("/", ", ") for item in info.provides)
        table.add_row(escape(info.name), escape(info.module), escape(provides) or "-")
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
@worker_flag_options
@click.pass_context
def config_command(ctx: click.Context, /, as_json: bool, **flags: Any) -> None:
    """Print the effective configuration and where each value came from. Worker flags
    (--autoscale, --max-tasks-per-child ...) show what a worker started with them runs with."""
    with applied_flags(flags, _note):
        app = app_for(ctx)
    try:
        config = app.worker().config  # the values a worker uses: CPU count, host name ...
        effective = _effective_worker(app, config)
        data = asdict(config, filter=lambda attribute, _: attribute.name not in ("provenance", "sections"))
        data.update({name: asdict(section) for name, section in config.sections.items()})
        data["worker"].update({key: value for key, (value, _) in effective.items()})
        data = redact(data)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"# file: {app.config_file or 'none'}")
    table = Table("key", "value", "from")
    for key, value in _flatten(data):
        source = config.source_of(key)
        if value is None and source == "default":
            continue  # an option nobody set (a per-task limit ...): nothing to show
        if key.startswith("worker.") and key[7:] in effective and source == "default":
            source = effective[key[7:]][1]
        table.add_row(key, escape(json.dumps(value, default=str)), escape(source))
    console.print(table)


def _effective_worker(app: Celeriac, config: Any) -> dict[str, tuple[Any, str]]:
    """Worker values whose setting means "work it out" (0, empty), as a worker works them out."""
    worker = config.worker
    effective: dict[str, tuple[Any, str]] = {}
    if app.config.worker.concurrency <= 0:
        effective["concurrency"] = (worker.concurrency, "default: the number of CPUs")
    if not worker.hostname:
        effective["hostname"] = (app.worker().hostname, "default: celeriac@HOST")
    if worker.prefetch == 0:
        effective["prefetch"] = (worker.concurrency, "default: concurrency (prefork: its reserve)")
    return effective


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


def _banner(app: Celeriac, instance: Any) -> None:
    cfg = instance.config
    err_console.print(
        f"[bold green]celeriac[/] {instance.hostname}\n"
        f"  app:          {app.main or '-'}\n"
        f"  broker:       {redact_url(cfg.broker)}\n"
        f"  results:      {redact_url(app.result_store_url or 'disabled')}\n"
        f"  pool:         {cfg.worker.pool} x {cfg.worker.concurrency}\n"
        f"  queues:       {', '.join(instance.queues)}\n"
        f"  beat:         {'embedded' if cfg.worker.beat else 'off'}\n"
        f"  tasks:        {', '.join(sorted(app.tasks)) or 'none'}",
        highlight=False,
    )


main.add_command(beat)
main.add_command(inspect)
main.add_command(control)
main.add_command(status)
