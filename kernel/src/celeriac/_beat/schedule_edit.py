"""Beat entries kept in the schedule store: listed, added and removed while beat runs.

Entries in code and in the config file change with a deploy (and SIGHUP); entries in the
store change at once, for every beat instance sharing the store, which notices the edit
within a second. ``celeriac beat schedule list|add|remove`` is built on this.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from celeriac._beat.entries import load_entries
from celeriac._beat.entries import store_url
from celeriac._client.periodic import check_entry_arguments
from celeriac._model.errors import ConfigError
from celeriac._model.schedules import BeatConfig
from celeriac._model.schedules import EntryStore
from celeriac._model.schedules import PeriodicTask
from celeriac._model.schedules import entry_from_table

if TYPE_CHECKING:
    from types import TracebackType

    from celeriac._client.app import Celeriac
    from celeriac._contract.protocols import ScheduleStore


class StoredSchedule:
    """The editable entries of the store beat uses (``[beat] schedule_store`` or the broker's).

    :param schedule_store: a store URL instead of the configured one.
    :raises ConfigError: when that store cannot keep entries.
    """

    def __init__(self, app: Celeriac, *, schedule_store: str | None = None) -> None:
        self.app = app
        config = app.config.section("beat", BeatConfig)
        self.url = schedule_store or store_url(app, config)
        self._config = config
        store: ScheduleStore = app.plugins.schedule_store(self.url).factory(self.url, app.config)
        if not isinstance(store, EntryStore):
            store.close()
            raise ConfigError(
                f"the schedule store {self.url} cannot keep entries; use a SQLite or Redis store"
            )
        self._store = store

    def __enter__(self) -> StoredSchedule:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    def add(self, name: str, table: Mapping[str, Any]) -> PeriodicTask:
        """Add or replace the entry ``name``, given as its ``[beat.schedule.NAME]`` table,
        checked as one read from the config file would be.

        :raises ConfigError: naming the entry and every problem; nothing is stored then.
        """
        if not name:
            raise ConfigError("a beat entry needs a name")
        stored = _jsonable(table)
        entry = entry_from_table(name, stored, self.app.plugins.schedule_types(), source="schedule store")
        check_entry_arguments(self.app, entry)
        self._store.put_entry(name, stored)
        return entry

    def remove(self, name: str) -> bool:
        """Remove the stored entry ``name``; False if the store has none (entries from code or
        the config file are not the store's to remove)."""
        return self._store.delete_entry(name)

    def tables(self) -> dict[str, dict[str, Any]]:
        """The stored entries as tables, by name."""
        return self._store.stored_entries()

    def all_entries(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        """Every entry beat would run: ``(name, source, stored table or None)``, the store's
        replacing others of the same name."""
        rows: dict[str, tuple[str, str, dict[str, Any] | None]] = {
            entry.name: (entry.name, entry.source, None) for entry in load_entries(self.app, self._config)
        }
        for name, table in self.tables().items():
            rows[name] = (name, "schedule store", table)
        return sorted(rows.values())

    def last_run_at(self, name: str) -> float | None:
        return self._store.last_run_at(name)


def _jsonable(table: Mapping[str, Any]) -> dict[str, Any]:
    """The table as the store keeps it: times (a clocked entry's) as ISO 8601 text."""

    def default(value: object) -> str:
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()
        raise ConfigError(f"a beat entry's value {value!r} cannot be stored (not JSON-compatible)")

    result: dict[str, Any] = json.loads(json.dumps(dict(table), default=default))
    return result
