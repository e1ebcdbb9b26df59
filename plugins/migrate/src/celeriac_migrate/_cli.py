"""``celeriac migrate celery MODULE[:APP]``: print the celeriac.toml equivalent to a Celery app's settings."""

from __future__ import annotations

import click


@click.group("migrate")
def migrate_command() -> None:
    """Move a project from another task queue to celeriac."""


@migrate_command.command("celery")
@click.argument("app_spec", metavar="MODULE[:APP]")
@click.option("--with-secrets", is_flag=True, help="Print passwords as they are (masked by default).")
def celery_command(app_spec: str, with_secrets: bool) -> None:
    """Print the celeriac.toml equivalent to a Celery app's configuration.

    MODULE[:APP] names the Celery app as `celery -A` does (proj.celery:app, proj.celery, proj).
    Its settings (new or old names, config_from_object, Django's CELERY_ namespace), task
    routes, queues, annotations and beat schedule become celeriac keys, each followed by the
    Celery setting it comes from; the settings with no equivalent are listed at the end, each
    with the reason. Redirect the output to a file: celeriac migrate celery proj > celeriac.toml
    """
    from celeriac_migrate._celery import load_app
    from celeriac_migrate._migrate import migrate
    from celeriac_migrate._render import render

    app = load_app(app_spec)
    migration = migrate(app, with_secrets=with_secrets)
    click.echo(render(migration, source=f"{app.main or '?'!r} ({app_spec})"), nl=False)
