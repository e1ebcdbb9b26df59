"""``celeriac call-url URL``: queue a URL task from the command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from celeriac.plugin import ConfigError
from celeriac.plugin import TimeoutError as CeleriacTimeoutError


def _header(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = text.strip()
    return headers


@click.command("call-url")
@click.argument("url")
@click.option("-X", "--method", default="POST", show_default=True, help="HTTP method.")
@click.option("--json", "json_text", help="JSON body (a JSON document).")
@click.option("--data", "content", help="Text body, sent as UTF-8.")
@click.option("-H", "--header", "header_values", multiple=True, help="'Name: value'; repeatable.")
@click.option("--timeout", type=float, help="Seconds the request may take.")
@click.option("--max-retries", type=int, help="Retries on connection errors, 5xx and 429.")
@click.option("-Q", "--queue", help="Queue to send to.")
@click.option("--countdown", type=float, help="Seconds to wait before requesting.")
@click.option("--wait", is_flag=True, help="Wait for the response and print it as JSON.")
@click.option("--wait-timeout", type=float, default=None, help="Seconds to wait with --wait.")
@click.pass_context
def call_url_command(
    ctx: click.Context,
    url: str,
    method: str,
    json_text: str | None,
    content: str | None,
    header_values: tuple[str, ...],
    timeout: float | None,
    max_retries: int | None,
    queue: str | None,
    countdown: float | None,
    wait: bool,
    wait_timeout: float | None,
) -> None:
    """Queue an HTTP request for a worker to make (a celeriac.webhook task); print its id."""
    from celeriac.plugin import load_app
    from celeriac_webhooks._task import send_url

    body: Any = None
    if json_text is not None:
        try:
            body = json.loads(json_text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
    obj = ctx.obj or {}
    app = load_app(obj.get("app"), obj.get("config"))
    try:
        handle = send_url(
            app,
            url,
            method,
            json=body,
            content=content,
            headers=_header(header_values),
            timeout=timeout,
            max_retries=max_retries,
            queue=queue,
            countdown=countdown,
        )
        click.echo(handle.id)
        if not wait:
            return
        try:
            value = handle.get(timeout=wait_timeout)
        except (CeleriacTimeoutError, ConfigError):
            raise  # no answer (yet), or no result store: the CLI's one-line error, exit 2
        except Exception as exc:  # the request failed on the worker: its error, exit 1
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            response = getattr(exc, "response", None)
            if response:
                click.echo(json.dumps(response, indent=2))
            sys.exit(1)
        click.echo(json.dumps(value, indent=2))
    finally:
        app.close()
