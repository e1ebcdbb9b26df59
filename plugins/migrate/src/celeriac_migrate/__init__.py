"""celeriac-migrate: ``celeriac migrate celery proj.celery:app`` prints a Celery app's configuration
as celeriac.toml, with every setting that has no equivalent listed and explained.

Importing this module imports neither Celery nor tomlkit: the command does, when it runs.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.plugin import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["celeriac_add_cli_commands"]


@hookimpl
def celeriac_add_cli_commands() -> Sequence["click.Command"]:
    from celeriac_migrate._cli import migrate_command

    return [migrate_command]
