"""The hook implementations: the ``[dashboard]`` section and the ``dashboard`` command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.plugin import ConfigSection
from celeriac.plugin import hookimpl
from celeriac_dashboard._config import SECTION
from celeriac_dashboard._config import DashboardConfig

if TYPE_CHECKING:
    import click


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=DashboardConfig, description="the web dashboard")]


@hookimpl
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    from celeriac_dashboard._cli import dashboard_command

    return [dashboard_command]
