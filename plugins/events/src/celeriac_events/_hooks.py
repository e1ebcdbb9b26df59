"""The hook implementations: the ``[events]`` section, the sinks, the bootstep and the command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import EventSink
from celeriac.plugin import hookimpl
from celeriac_events._config import SECTION
from celeriac_events._config import EventsConfig
from celeriac_events._sent import PLUGIN_NAME
from celeriac_events._sent import SentEvents
from celeriac_events._sinks import BrokerSink
from celeriac_events._sinks import JsonlSink
from celeriac_events._sinks import LogSink
from celeriac_events._step import BrokerSinkStep

if TYPE_CHECKING:
    import click

    from celeriac.plugin import Bootstep
    from celeriac.plugin import Celeriac
    from celeriac.plugin import TaskMessage


def make_sinks(settings: EventsConfig) -> list[EventSink]:
    """The sinks ``[events] sinks`` names, in its order; none of them opens or starts anything yet.

    The broker sink comes without a transport: the ``events.broker`` bootstep binds it.
    """
    sinks: list[EventSink] = []
    for name in dict.fromkeys(settings.sinks):  # a name listed twice is one sink
        if name == "broker":
            sinks.append(BrokerSink(interval=settings.batch_interval, max_buffer=settings.max_buffer))
        elif name == "jsonl":
            sinks.append(
                JsonlSink(settings.file, interval=settings.batch_interval, max_buffer=settings.max_buffer)
            )
        elif name == "log":
            sinks.append(LogSink(settings.level))
    return sinks


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=EventsConfig, description="where monitoring events go")]


@hookimpl
def celeriac_add_event_sinks(config: Config) -> Sequence[EventSink]:
    return make_sinks(config.section(SECTION, EventsConfig))


@hookimpl
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
    # Always contributed; BrokerSinkStep.enabled reads [events] sinks.
    return [BrokerSinkStep()]


@hookimpl
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    from celeriac_events._cli import events_command

    return [events_command]


@hookimpl
def celeriac_app_configured(app: Celeriac) -> None:
    # Per-app state lives in the app's own plugin manager, found again by name on publish.
    settings = app.config.section(SECTION, EventsConfig)
    if settings.task_send_sent_event:
        app.plugins.pm.register(SentEvents(app, settings), name=PLUGIN_NAME)


@hookimpl
def celeriac_app_closing(app: Celeriac) -> None:
    sent = app.plugins.pm.get_plugin(PLUGIN_NAME)
    if sent is not None:
        sent.restart()


@hookimpl
def celeriac_after_publish(message: TaskMessage, queue: str, app: Celeriac) -> None:
    sent = app.plugins.pm.get_plugin(PLUGIN_NAME)
    if sent is not None:
        sent.record(message, queue)
