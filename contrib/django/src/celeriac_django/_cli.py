"""``celeriac relay``: the outbox relay as a process of its own (``manage.py celeriac relay``)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click


@click.command("relay")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Seconds between looks at an empty outbox.",
)
@click.option(
    "--database", default=None, help="The database alias of the outbox (default [django] outbox_database)."
)
@click.option("--once", is_flag=True, help="Publish what is unsent now, then exit.")
@click.pass_context
def relay_command(ctx: click.Context, interval: float | None, database: str | None, once: bool) -> None:
    """Publish the Django outbox's unsent rows to the broker and mark them sent."""
    from celeriac.plugin import load_app
    from celeriac_django._config import SECTION
    from celeriac_django._config import DjangoConfig
    from celeriac_django._connections import django_ready

    root: dict[str, Any] = ctx.find_root().obj or {}
    app = load_app(root.get("app") or "celeriac_django.app:app", root.get("config"))
    if not django_ready():
        raise click.UsageError("relay needs a Django project: run it as `python manage.py celeriac relay`")
    from celeriac_django.outbox import Relay
    from celeriac_django.outbox import relay_forever

    settings = app.config.section(SECTION, DjangoConfig)
    relay = Relay(app, using=database or settings.outbox_database, lease=settings.outbox_lease)
    if once:
        done = relay.run_once()
        while done.sent and not done.failed:
            done = relay.run_once()
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"relay: publishing the outbox of database {relay.using!r} (Ctrl-C to stop)", err=True)
    relay_forever(relay, stop, interval or settings.outbox_interval)
