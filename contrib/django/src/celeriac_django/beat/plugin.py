"""The ``django://`` schedule store, offered to every celeriac process through the
``celeriac.plugins`` entry point; it imports Django only when a beat opens the store."""

from __future__ import annotations

from collections.abc import Sequence

from celeriac.plugin import Config
from celeriac.plugin import ScheduleStore
from celeriac.plugin import ScheduleStoreSpec
from celeriac.plugin import ScheduleType
from celeriac.plugin import hookimpl


def _open(url: str, config: Config) -> ScheduleStore:
    from celeriac_django.beat.store import DjangoScheduleStore

    return DjangoScheduleStore(url, config)


@hookimpl
def celeriac_add_schedule_stores() -> Sequence[ScheduleStoreSpec]:
    return [
        ScheduleStoreSpec(
            schemes=("django",),
            factory=_open,
            description="beat's entries and runs in the Django database (celeriac_django.beat)",
        )
    ]


@hookimpl
def celeriac_add_schedule_types() -> Sequence[ScheduleType]:
    from celeriac_django.beat import oneoff

    return [
        ScheduleType(
            key="one_off",
            factory=oneoff.from_value,
            description="an every, cron or solar schedule run once (again after the entry changes)",
        )
    ]
