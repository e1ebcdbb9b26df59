"""The hook implementations: the ``[webhooks]`` section, the event sinks, ``call-url``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import EventSink
from celeriac.plugin import hookimpl
from celeriac_webhooks._config import SECTION
from celeriac_webhooks._config import WebhooksConfig
from celeriac_webhooks._sink import WebhookSink
from celeriac_webhooks._task import register

if TYPE_CHECKING:
    import click

    from celeriac.plugin import Celeriac


def make_sinks(settings: WebhooksConfig) -> list[WebhookSink]:
    """One sink per ``[webhooks.sinks.NAME]`` table; none starts a thread before its first event."""
    return [
        WebhookSink(
            name,
            sink,
            secret=sink.secret or settings.secret,
            allowed_hosts=settings.allowed_hosts,
        )
        for name, sink in settings.sinks.items()
    ]


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=WebhooksConfig, description="URL tasks and webhook event sinks")]


@hookimpl
def celeriac_app_configured(app: Celeriac) -> None:
    # Every app has the URL task: producers, workers, eager mode and pool children alike.
    register(app)


@hookimpl
def celeriac_add_event_sinks(config: Config) -> Sequence[EventSink]:
    return make_sinks(config.section(SECTION, WebhooksConfig))


@hookimpl
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    from celeriac_webhooks._cli import call_url_command

    return [call_url_command]
