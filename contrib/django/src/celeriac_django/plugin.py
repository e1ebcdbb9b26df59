"""The plugin half of celeriac-django, found through the ``celeriac.plugins`` entry point.

Loaded in every celeriac process where the distribution is installed, Django project or not:
it imports nothing of Django at import time, and its hooks do nothing in a process where Django
is not set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from celeriac.plugin import after_fork
from celeriac.plugin import hookimpl
from celeriac_django._connections import close_old_connections
from celeriac_django._connections import drop_inherited

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac
    from celeriac.plugin import Task
    from celeriac.plugin import TaskRequest


@hookimpl
def celeriac_app_configured(app: Celeriac) -> None:
    after_fork(app, drop_inherited)


@hookimpl
def celeriac_task_prerun(task: Task[Any, Any], request: TaskRequest) -> None:
    close_old_connections()


@hookimpl
def celeriac_task_postrun(task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
    close_old_connections()
