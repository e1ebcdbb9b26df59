"""Periodic tasks declared in code (``app.add_periodic_task``) and the check of an entry's
arguments: the client's half of beat, which the app needs without the beat service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.canvas import Signature
from celeriac._model.errors import ConfigError
from celeriac._model.schedules import MissedPolicy
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import Schedule
from celeriac._model.schedules import build_schedule
from celeriac._model.schedules import entry_from_table

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task


def periodic_tasks(app: Celeriac) -> dict[str, PeriodicTask]:
    """The entries declared in code on ``app`` (``add_periodic_task``), by name."""
    return app.periodic_tasks


def add_periodic_task(
    app: Celeriac,
    schedule: Schedule | Mapping[str, Any] | float | dt.timedelta,
    task: str | Task[Any, Any] | Signature,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
    expires: float | None = None,
    missed: MissedPolicy | None = None,
    timezone: str | None = None,
) -> PeriodicTask:
    """Declare a periodic task in code: ``add_periodic_task(app, 30, "proj.ping")``.

    :param schedule: a schedule object (``celeriac_cron.crontab("0 3 * * *")``), a table such
        as ``{"cron": "0 3 * * *"}`` (as in TOML), or seconds / a timedelta (``every``).
    :param task: the task, its name, or a signature (``add.s(2, 3)``, as in Celery) whose
        arguments come first and whose ``queue``, ``priority`` and ``expires`` are defaults.
    :param name: the entry's name (default: the task's name); a ``[beat.schedule.NAME]``
        table of the same name replaces the entry.
    :raises ConfigError: naming the entry, when something is invalid or the name is taken.
    """
    options: dict[str, Any] = {}
    if isinstance(task, Signature):
        args, kwargs = (*task.args, *args), {**task.kwargs, **(kwargs or {})}
        options = dict(task.options)
        task_name = task.task
    else:
        task_name = task if isinstance(task, str) else task.name
    name = name or task_name
    registry = periodic_tasks(app)
    if name in registry:
        raise ConfigError(f"beat entry {name!r} (code) is declared twice; give each a name=")
    unsupported = sorted(set(options) - {"queue", "priority", "expires"})
    if unsupported:
        raise ConfigError(
            f"beat entry {name!r} (code): the signature's {', '.join(unsupported)} cannot be sent "
            "by beat (queue, priority and expires can)"
        )
    table: dict[str, Any] = {"task": task_name, "args": list(args), "kwargs": dict(kwargs or {})}
    given = {"queue": queue, "priority": priority, "expires": expires, "missed": missed, "timezone": timezone}
    table.update({key: value for key, value in options.items() if value is not None})
    table.update({key: value for key, value in given.items() if value is not None})
    types = app.plugins.schedule_types()
    built: Schedule | None = None
    if isinstance(schedule, Mapping):
        table.update(schedule)
    elif isinstance(schedule, Schedule):
        built = schedule
    else:
        seconds = schedule.total_seconds() if isinstance(schedule, dt.timedelta) else schedule
        if "every" not in types:
            raise ConfigError(f"beat entry {name!r} (code): no plugin offers 'every'; install celeriac-cron")
        problems: list[str] = []
        built = build_schedule("every", seconds, types, problems)
        if built is None:
            raise ConfigError(f"beat entry {name!r} (code): {'; '.join(problems)}")
    entry = entry_from_table(name, table, types, source="code", schedule=built)
    check_entry_arguments(app, entry)
    registry[name] = entry
    return entry


def check_entry_arguments(app: Celeriac, entry: PeriodicTask) -> None:
    """A task registered here is checked now; one known only by name, when a worker runs it."""
    task = app.tasks.get(entry.task)
    if task is None:
        return
    try:
        task.arguments.check(entry.task, entry.args, entry.kwargs)
    except TypeError as exc:
        raise ConfigError(f"beat entry {entry.name!r} ({entry.source}): {exc}") from None
