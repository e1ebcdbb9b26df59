"""``celeriac dashboard``: the web dashboard and Flower-compatible API for a whole cluster."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import click

from celeriac.plugin import CeleriacError
from celeriac_dashboard._config import SECTION
from celeriac_dashboard._config import DashboardConfig

log = logging.getLogger("celeriac.dashboard")


def _loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@click.command("dashboard")
@click.option("--address", help="Address to bind (default: [dashboard] address, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [dashboard] port, 5555).")
@click.option("--url-prefix", help="Serve under this path behind a reverse proxy, e.g. /flower.")
@click.option("--read-only", is_flag=True, default=None, help="Refuse every action; only show.")
@click.option("--history", help="The SQLite file that keeps the history ('' for memory only).")
@click.pass_context
def dashboard_command(
    ctx: click.Context,
    address: str | None,
    port: int | None,
    url_prefix: str | None,
    read_only: bool | None,
    history: str | None,
) -> None:
    """Serve the live dashboard and Flower's HTTP API (workers need events on: -E).

    Runs from the configuration alone (broker and result store URLs); -A adds the app's
    tasks, for the apply endpoints.
    """
    import attrs
    import uvicorn

    from celeriac.plugin import load_app
    from celeriac_dashboard._control import Inspector
    from celeriac_dashboard._monitor import Monitor
    from celeriac_dashboard._security import Guard
    from celeriac_dashboard._services import Services
    from celeriac_dashboard._web import make_app

    root: dict[str, Any] = ctx.find_root().obj or {}
    app = load_app(root.get("app"), root.get("config"))
    given: dict[str, Any] = {
        "address": address,
        "port": port,
        "url_prefix": url_prefix,
        "read_only": read_only,
        "history": history,
    }
    try:
        settings = attrs.evolve(
            app.config.section(SECTION, DashboardConfig), **{k: v for k, v in given.items() if v is not None}
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not _loopback(settings.address) and not (settings.passwords or settings.tokens):
        raise click.UsageError(
            f"refusing to serve on {settings.address} without credentials: set [dashboard] passwords "
            "or tokens, or keep the default address 127.0.0.1 behind a reverse proxy"
        )
    monitor = Monitor(app, settings)
    svc = Services(
        monitor=monitor,
        inspector=Inspector(app, settings.inspect_timeout),
        guard=Guard(settings.passwords, settings.tokens, read_only=settings.read_only),
        settings=settings,
    )
    try:
        monitor.start()
        click.echo(f"dashboard on http://{settings.address}:{settings.port}{settings.url_prefix}/", err=True)
        uvicorn.run(
            make_app(svc),
            host=settings.address,
            port=settings.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    except CeleriacError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        monitor.stop()
        app.close()
