"""Beat's model: what a schedule and a leader lock provide, the ``[beat]`` section, and entries.

Kinds of schedule (interval, crontab, solar ...) come from plugins through
``celeriac_add_schedule_types``; stores for last-run times through
``celeriac_add_schedule_stores``. A store that can also elect a leader between several beat
instances implements :class:`BeatLock` as well, the way a transport that can broadcast
implements :class:`~celeriac._contract.protocols.Broadcaster`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from attrs import field
from attrs import frozen

from celeriac._model.errors import ConfigError

if TYPE_CHECKING:
    from celeriac._contract.specs import ScheduleType

#: What beat does with runs that fell due while no beat was running (or more than
#: ``[beat] grace`` seconds ago): send one of them now, or none.
MissedPolicy = Literal["run_once", "skip"]
MISSED_POLICIES: tuple[MissedPolicy, ...] = ("run_once", "skip")


@runtime_checkable
class Schedule(Protocol):
    """When an entry is due.

    Times are aware datetimes. A schedule computes in the time zone of the moment it is
    given, which is beat's ``timezone`` or the entry's own; a naive time a schedule holds
    (a clocked entry's) is read in that zone.
    """

    def next_after(self, moment: datetime) -> datetime | None:
        """The first due time strictly after ``moment``; None when the schedule is over."""

    def first_run(self, start: datetime) -> datetime | None:
        """When an entry that has never run is first due, given when beat took charge.

        Recurring schedules answer ``next_after(start)`` or, for intervals, one interval
        after ``start`` (Celery's rule); a one-off answers its time even when that is past,
        so that the missed-run policy decides whether it still runs.
        """


@runtime_checkable
class BeatLock(Protocol):
    """Leader election between beat instances: an optional capability of a schedule store.

    A lease that is not renewed within ``ttl`` seconds ends, and another instance may take
    it. ``claim`` is the fence: a run is recorded as being sent only while its owner holds
    the lock, atomically, so an instance that lost the lock without noticing cannot send.
    Methods may be called from any thread; expiry is judged on the store's clock.
    """

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock ``name`` for ``ttl`` seconds if it is free, expired or ``owner``'s."""

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s unexpired lease to ``ttl`` seconds from now; False if it was lost."""

    def release(self, name: str, owner: str) -> None:
        """Give the lock up if ``owner`` holds it, so that a standby takes over at once."""

    def claim(self, name: str, owner: str, entry: str, when: float) -> bool:
        """Record that ``owner`` is sending ``entry``'s run at ``when`` (epoch seconds).

        Succeeds, atomically, only while ``owner`` holds an unexpired lease on ``name``;
        records nothing and returns False otherwise.
        """

    def claimed_at(self, entry: str) -> float | None:
        """The run last claimed for ``entry``; later than its last run when a leader died
        between claiming a run and recording it as sent."""


@runtime_checkable
class EntryStore(Protocol):
    """Beat entries kept in the schedule store, so they can be added and removed while beat
    runs (``celeriac beat schedule``): an optional capability of a schedule store.

    An entry is stored as its ``[beat.schedule.NAME]`` table (JSON-compatible values);
    :meth:`entries_version` changes with every edit, so beat notices one with a cheap read.
    """

    def stored_entries(self) -> dict[str, dict[str, Any]]:
        """Every stored entry's table, by name."""

    def put_entry(self, name: str, table: Mapping[str, Any]) -> None:
        """Add or replace the entry ``name``."""

    def delete_entry(self, name: str) -> bool:
        """Remove the entry ``name``; False if there was none."""

    def entries_version(self) -> int:
        """A number that changes whenever an entry is put or deleted."""


@frozen(kw_only=True)
class BeatConfig:
    """``[beat]``: the periodic-task scheduler.

    Entries are ``[beat.schedule.NAME]`` tables; they are validated when beat starts, since
    their schedule keys (``every``, ``cron`` ...) come from plugins.
    """

    #: Where last-run times (and the leader lock) live; unset means the broker's URL when a
    #: schedule store serves its scheme, else ``sqlite:///celeriac-beat.sqlite3``.
    schedule_store: str | None = None
    #: The zone crontab and solar entries are read in, and naive clocked times.
    timezone: str = "UTC"
    #: The longest sleep between two looks at the schedule, in seconds.
    max_interval: float = 300.0
    #: Default missed-run policy of entries that do not set ``missed``.
    missed: MissedPolicy = "run_once"
    #: A run sent up to this many seconds late is on time (a leader change, a slow broker);
    #: later than that it was missed and the entry's policy applies.
    grace: float = 15.0
    #: Instances sharing a store and this name elect one leader; the others stand by.
    lock_name: str = "beat"
    #: Seconds a leader's lease lasts without renewal: the longest a dead leader blocks.
    lease: float = 5.0
    #: Seconds between two renewals (leader) or two attempts to take over (standby).
    renew_interval: float = 1.5
    #: ``[beat.schedule.NAME]`` tables as written; see :func:`celeriac._beat.beat.load_entries`.
    schedule: Mapping[str, Mapping[str, Any]] = field(factory=dict)


@frozen(kw_only=True)
class PeriodicTask:
    """One beat entry: which task to send, with what, and when.

    :param missed: the missed-run policy; None uses ``[beat] missed``.
    :param timezone: the zone this entry's schedule is read in; None uses ``[beat] timezone``.
    :param source: where the entry was defined (a file, or ``code``), for messages.
    """

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = field(default=(), converter=tuple)
    kwargs: Mapping[str, Any] = field(factory=dict)
    queue: str | None = None
    priority: int | None = None
    expires: float | None = None
    missed: MissedPolicy | None = None
    timezone: ZoneInfo | None = None
    source: str = "code"


def entry_from_table(
    name: str,
    table: Mapping[str, Any],
    types: Mapping[str, ScheduleType],
    *,
    source: str,
    schedule: Schedule | None = None,
) -> PeriodicTask:
    """Build and check one entry from a ``[beat.schedule.NAME]`` table.

    :param types: the schedule types plugins offer, by key (``every``, ``cron`` ...).
    :param schedule: an already built schedule (entries from code); the table must then
        have no schedule key.
    :raises ConfigError: listing every problem, each naming the entry and ``source``.
    """
    problems: list[str] = []
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in types:
            continue
        check = _OPTION_CHECKS.get(key)
        if check is None:
            hint = difflib.get_close_matches(key, [*_OPTION_CHECKS, *types], n=1)
            problems.append(
                f"unknown key {key!r}{f'; did you mean {hint[0]!r}?' if hint else ''} "
                f"(keys: {', '.join(_OPTION_CHECKS)}, and one schedule: {_listing(types)})"
            )
            continue
        try:
            options[key] = check(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{key} = {value!r}: {exc}")
    if "task" not in table:
        problems.append("no task: set task = 'module.function'")
    keys = [key for key in table if key in types]
    if schedule is None:
        schedule = _schedule_from(keys, table, types, problems)
    elif keys:
        problems.append(f"two schedules: the one given in code and {keys[0]} = {table[keys[0]]!r}")
    if problems or schedule is None:  # no schedule always comes with a problem
        where = f"beat entry {name!r} ({source})"
        raise ConfigError("\n  ".join(f"{where}: {problem}" for problem in problems))
    return PeriodicTask(name=name, schedule=schedule, source=source, **options)


def _schedule_from(
    keys: list[str], table: Mapping[str, Any], types: Mapping[str, ScheduleType], problems: list[str]
) -> Schedule | None:
    if not keys:
        problems.append(
            f"no schedule: set one of {_listing(types)}"
            if types
            else "no schedule: no plugin offers schedule types; install celeriac-cron"
        )
        return None
    if len(keys) > 1:
        problems.append(f"several schedules ({', '.join(keys)}); an entry has exactly one")
        return None
    key = keys[0]
    return build_schedule(key, table[key], types, problems)


def build_schedule(
    key: str, value: Any, types: Mapping[str, ScheduleType], problems: list[str]
) -> Schedule | None:
    """Call the factory of the schedule type ``key``; its ValueError or TypeError is a problem."""
    try:
        built = types[key].factory(value)
    except (TypeError, ValueError) as exc:
        problems.append(f"{key} = {value!r}: {exc}")
        return None
    if not isinstance(built, Schedule):
        problems.append(
            f"{key}: the plugin's factory returned {type(built).__name__}, which is not a Schedule "
            "(next_after and first_run)"
        )
        return None
    return built


def _listing(types: Mapping[str, ScheduleType]) -> str:
    return ", ".join(sorted(types)) or "none installed"


def _task(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a task name")
    return value


def _args(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError("expected a list")
    return tuple(value)


def _kwargs(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise TypeError("expected a table with string keys")
    return dict(value)


def _queue(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a queue name")
    return value


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ValueError("expected an integer from 0 to 9")
    return value


def _expires(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError("expected a number of seconds above 0")
    return float(value)


def _missed(value: Any) -> MissedPolicy:
    for policy in MISSED_POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"expected one of {', '.join(repr(p) for p in MISSED_POLICIES)}")


def zone(value: Any) -> ZoneInfo:
    """A time zone by IANA name; ValueError names what was wrong."""
    if not isinstance(value, str) or not value:
        raise TypeError("expected an IANA time zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (IANA names such as 'Europe/Berlin' or 'UTC')") from None


_OPTION_CHECKS: dict[str, Callable[[Any], Any]] = {
    "task": _task,
    "args": _args,
    "kwargs": _kwargs,
    "queue": _queue,
    "priority": _priority,
    "expires": _expires,
    "missed": _missed,
    "timezone": zone,
}
