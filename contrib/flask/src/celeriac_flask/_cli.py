"""``flask celeriac ...``: celeriac's command line for the Flask app the ``flask`` command loads."""

from __future__ import annotations

import os

import click
from flask.cli import ScriptInfo

from celeriac.plugin import run_cli

#: The app path ``celeriac -A`` is given: it builds the Flask app named by ``FLASK_APP`` (as
#: ``flask --app`` does) and takes its celeriac app; processes started afresh (a prefork
#: pool's forkserver) import it the same way.
ENTRY = "celeriac_flask.entry:app"


@click.command(
    "celeriac",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def celeriac_command(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run a celeriac command for this Flask app: worker, beat, call, inspect, result ...

    ``flask --app proj celeriac worker -c 4`` is ``celeriac -A ... worker -c 4`` with the
    celeriac app of the Flask app ``proj``: every task runs inside that app's context.
    """
    info = ctx.ensure_object(ScriptInfo)
    if info.create_app is not None and not info.app_import_path:
        raise click.UsageError(
            "this flask command builds its app with create_app=, which a worker's fresh processes "
            "cannot import; start the worker with `celeriac -A module:attribute worker` instead"
        )
    if info.app_import_path:
        os.environ["FLASK_APP"] = info.app_import_path
    run_cli(prog_name=f"{ctx.find_root().info_name or 'flask'} celeriac", args=["-A", ENTRY, *args])
