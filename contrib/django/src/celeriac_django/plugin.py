"""The plugin half of celeriac-django, found through the ``celeriac.plugins`` entry point.

Loaded in every celeriac process where the distribution is installed, Django project or not:
it imports nothing of Django at import time, and its hooks do nothing in a process where Django
is not set up. It gives the ``django://`` result store, the ``[django]`` section, the outbox
relay bootstep, and the handling of Django's connections around tasks and after a fork.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac.plugin import Bootstep
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import after_fork
from celeriac.plugin import hookimpl
from celeriac_django._config import SECTION
from celeriac_django._config import DjangoConfig
from celeriac_django._connections import close_old_connections
from celeriac_django._connections import django_ready
from celeriac_django._connections import drop_inherited
from celeriac_django._relay_step import OutboxRelayStep

if TYPE_CHECKING:
    import click

    from celeriac.plugin import Celeriac
    from celeriac.plugin import Config
    from celeriac.plugin import ResultStore
    from celeriac.plugin import Task
    from celeriac.plugin import TaskRequest


def _result_store(url: str, config: Config) -> ResultStore:
    from celeriac_django.results import django_result_store

    return django_result_store(url, config)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=DjangoConfig, description="celeriac-django: the outbox relay")]


@hookimpl
def celeriac_add_cli_commands() -> Sequence[click.Command]:
    from celeriac_django._cli import relay_command

    return [relay_command]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("django",),
            factory=_result_store,
            description="task results in the Django project's database (django://[alias]), in the admin",
        )
    ]


@hookimpl
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
    return [OutboxRelayStep()]


@hookimpl
def celeriac_app_configured(app: Celeriac) -> None:
    after_fork(app, drop_inherited)


@hookimpl
def celeriac_task_prerun(task: Task[Any, Any], request: TaskRequest) -> None:
    close_old_connections()


@hookimpl
def celeriac_task_postrun(task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
    if django_ready() and (task.app.config.result_store or "").startswith("django:"):
        from celeriac_django.results import name_result

        name_result(task.app, task.name, request)
    close_old_connections()
