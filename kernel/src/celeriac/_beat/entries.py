"""Beat's entries: from code and ``[beat.schedule.*]``, from the schedule store, and the
store beat keeps its runs in."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from celeriac._client.periodic import check_entry_arguments
from celeriac._client.periodic import periodic_tasks
from celeriac._model.errors import ConfigError
from celeriac._model.errors import PluginError
from celeriac._model.schedules import BeatConfig
from celeriac._model.schedules import EntryStore
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import entry_from_table

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.beat")

#: The store used when neither ``[beat] schedule_store`` nor the broker's scheme names one.
FALLBACK_STORE = "sqlite:///celeriac-beat.sqlite3"
#: Task ids of beat's runs are uuid5 of the entry and run time in this namespace, so the same
#: run sent twice (the one window docs/periodic-tasks.md describes) carries the same id.
RUN_ID_NAMESPACE = uuid.UUID("6c3f5e8e-2b0a-4f57-9d1e-63a1c0beca7d")


def load_entries(
    app: Celeriac, config: BeatConfig, source_of: Callable[[str], str] | None = None
) -> list[PeriodicTask]:
    """Entries from code and from ``[beat.schedule.*]`` (a table replaces a code entry).

    :param source_of: where a dotted key came from (default: the app's configuration's).
    :raises ConfigError: listing the problems of every invalid entry, each naming it.
    """
    types = app.plugins.schedule_types()
    source_of = source_of or app.config.source_of
    entries = dict(periodic_tasks(app))
    problems: list[str] = []
    for name, table in config.schedule.items():
        sources = (source_of(f"beat.schedule.{name}.{key}") for key in table)
        source = next((found for found in sources if found != "default"), "config")
        try:
            entry = entry_from_table(name, table, types, source=source)
            check_entry_arguments(app, entry)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if name in entries:
            log.info("beat entry %r from %s replaces the one declared in code", name, source)
        entries[name] = entry
    if problems:
        raise ConfigError("invalid beat schedule:\n  " + "\n  ".join(problems))
    return list(entries.values())


def load_stored_entries(app: Celeriac, store: EntryStore) -> list[PeriodicTask]:
    """The entries kept in the store (``celeriac beat schedule add``); an invalid one (a
    plugin since uninstalled, a task since changed) is logged, naming it, and left out."""
    types = app.plugins.schedule_types()
    entries = []
    for name, table in store.stored_entries().items():
        try:
            entry = entry_from_table(name, table, types, source="schedule store")
            check_entry_arguments(app, entry)
        except ConfigError as exc:
            log.error("stored beat entry left out: %s", exc)
            continue
        entries.append(entry)
    return entries


def store_url(app: Celeriac, config: BeatConfig) -> str:
    """``[beat] schedule_store``, else the broker's URL if a store serves it, else a local file."""
    if config.schedule_store:
        return config.schedule_store
    try:
        app.plugins.schedule_store(app.config.broker)
    except PluginError:
        return FALLBACK_STORE
    return app.config.broker


def run_id(entry: str, when: float) -> str:
    """The task id of ``entry``'s run at ``when``: the same wherever and however often computed."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{entry}@{when!r}"))
