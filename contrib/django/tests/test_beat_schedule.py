"""The database-backed beat schedule against a real ``manage.py celeriac beat`` and a real worker, on
SQLite and on PostgreSQL: entries added, edited, disabled and re-enabled through the ORM
reach the running beat within 2 s; one-off entries run once and are then disabled."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from beat_support import KINDS
from beat_support import TASK
from beat_support import beat_and_worker
from beat_support import beat_command
from beat_support import hits
from beat_support import logs
from beat_support import wait_for

from celeriac.testing import ProcessGroup

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Seconds from the commit of an edit to the task running: beat re-reads the entries within
#: 1 s of the change marker moving (2 s is the promise), the worker polls every 0.2 s.
PICKUP = 2.5


@pytest.fixture(params=KINDS)
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, ProcessGroup]]:
    """A beat and a worker of a project on a new database; yields ``(alias, folder, group)``."""
    with beat_and_worker(request.param, tmp_path) as (alias, group):
        yield alias, tmp_path, group


def _logs(group: ProcessGroup) -> str:
    return logs(group)


def _first_after(folder: Path, label: str, since: float, **kwargs: Any) -> dict[str, Any] | None:
    for hit in hits(folder, label):
        if hit["at"] > since and all(hit["kwargs"].get(k) == v for k, v in kwargs.items()):
            return hit
    return None


def test_orm_edits_reach_the_running_beat(running: tuple[str, Path, ProcessGroup]) -> None:
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    alias, folder, group = running
    tasks = PeriodicTask.objects.using(alias)
    second = IntervalSchedule.objects.using(alias).create(every=1, period="seconds")
    tasks.create(name="canary", task=TASK, args=["canary"], interval=second)

    # Added: the first run follows within the pickup time.
    added = time.time()
    tick = tasks.create(name="tick", task=TASK, args=["tick"], kwargs={"v": 1}, interval=second)
    first = wait_for(
        lambda: _first_after(folder, "tick", added), 10, "the added entry ran", lambda: _logs(group)
    )
    assert first["at"] - added < PICKUP, f"picked up after {first['at'] - added:.2f} s"

    # Edited: the new arguments follow within the pickup time.
    tick.kwargs = {"v": 2}
    tick.save()
    edited = time.time()
    second_version = wait_for(
        lambda: _first_after(folder, "tick", edited, v=2), 10, "the edited entry ran", lambda: _logs(group)
    )
    # Beat has the edit within the pickup time; the first run with it is the entry's next due
    # time after that, up to one interval (1 s) later.
    assert second_version["at"] - edited < PICKUP + 1.0, (
        f"edit ran after {second_version['at'] - edited:.2f} s"
    )

    # Disabled: beat drops it (its log says so); then, while the canary runs on three more
    # times, the entry runs no more (a run sent before the pickup may still arrive).
    tick.enabled = False
    tick.save()
    disabled = time.time()
    wait_for(
        lambda: "removed: tick" in group.started[1].output(),
        10,
        "beat dropped the entry",
        lambda: _logs(group),
    )
    dropped = time.time()
    assert dropped - disabled < PICKUP
    wait_for(
        lambda: len([h for h in hits(folder, "canary") if h["at"] > dropped + 0.5]) >= 3, 15, "canary ran"
    )
    late = [hit for hit in hits(folder, "tick") if hit["at"] > dropped + 0.5]
    assert late == [], late

    # Re-enabled by a bulk update (no signal; the queryset moves the marker itself).
    assert tasks.filter(name="tick").update(enabled=True) == 1
    enabled = time.time()
    again = wait_for(
        lambda: _first_after(folder, "tick", enabled), 10, "re-enabled entry ran", lambda: _logs(group)
    )
    assert again["at"] - enabled < PICKUP, f"re-enable picked up after {again['at'] - enabled:.2f} s"

    print(  # the figures, for -s
        f"pickup (commit to run): added {first['at'] - added:.2f} s, "
        f"edited {second_version['at'] - edited:.2f} s, re-enabled {again['at'] - enabled:.2f} s; "
        f"disabled to dropped {dropped - disabled:.2f} s"
    )

    # Deleted: gone from beat as well.
    tasks.filter(name="tick").delete()
    wait_for(
        lambda: group.started[1].output().count("removed: tick") >= 2, 10, "beat dropped the deleted entry"
    )

    # Beat wrote what it did back: the canary's run count and time.
    canary = tasks.get(name="canary")
    assert canary.total_run_count >= 3
    assert canary.last_run_at is not None
    assert dt.datetime.now(dt.UTC) - canary.last_run_at < dt.timedelta(seconds=10)


def test_one_off_entries_run_once(running: tuple[str, Path, ProcessGroup]) -> None:
    from celeriac_django.beat.models import ClockedSchedule
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    alias, folder, group = running
    tasks = PeriodicTask.objects.using(alias)
    second = IntervalSchedule.objects.using(alias).create(every=1, period="seconds")
    tasks.create(name="canary", task=TASK, args=["canary"], interval=second)
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    clocked = ClockedSchedule.objects.using(alias).create(clocked_time=at)
    tasks.create(name="once-clocked", task=TASK, args=["clocked"], clocked=clocked)
    tasks.create(name="once-interval", task=TASK, args=["one_off"], interval=second, one_off=True)

    ran = wait_for(lambda: hits(folder, "clocked"), 15, "the clocked entry ran", lambda: _logs(group))
    assert ran[0]["at"] >= at.timestamp(), "ran before its time"
    wait_for(lambda: hits(folder, "one_off"), 15, "the one-off interval entry ran", lambda: _logs(group))
    # Both are disabled after their run, and beat drops them: while the canary runs three
    # more times, neither runs again.
    wait_for(
        lambda: not tasks.filter(name__startswith="once-", enabled=True).exists(), 10, "one-offs disabled"
    )
    settled = time.time()
    wait_for(lambda: len([h for h in hits(folder, "canary") if h["at"] > settled]) >= 3, 15, "canary ran")
    assert len(hits(folder, "clocked")) == 1, hits(folder, "clocked")
    assert len(hits(folder, "one_off")) == 1, hits(folder, "one_off")
    for name in ("once-clocked", "once-interval"):
        entry = tasks.get(name=name)
        assert (entry.enabled, entry.total_run_count) == (False, 1), name
        assert entry.last_run_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_standby_beat_takes_over(kind: str, tmp_path: Path) -> None:
    """Two beats on one database: one sends; when it stops, the other takes the lease and
    sends on, and no run is sent twice (each run's task id is unique)."""
    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    with beat_and_worker(kind, tmp_path) as (alias, group):
        standby = group.start(beat_command(), ready="store django://", log="standby")
        second = IntervalSchedule.objects.using(alias).create(every=1, period="seconds")
        PeriodicTask.objects.using(alias).create(name="tick", task=TASK, args=["tick"], interval=second)
        wait_for(lambda: len(hits(tmp_path, "tick")) >= 2, 15, "the leader sent", lambda: logs(group))
        assert "sends from now on" not in standby.output()
        group.started[1].stop()  # the leader, SIGTERM: it gives the lease up
        stopped = time.time()
        wait_for(
            lambda: "sends from now on" in standby.output(), 10, "the standby took over", lambda: logs(group)
        )
        wait_for(
            lambda: len([h for h in hits(tmp_path, "tick") if h["at"] > stopped + 0.5]) >= 3,
            15,
            "the new leader sent",
            lambda: logs(group),
        )
        ids = [hit["id"] for hit in hits(tmp_path, "tick")]
        assert len(ids) == len(set(ids)), ids
        print(f"{kind}: standby took over; {len(ids)} runs, none twice")


def test_beat_reconnects_after_losing_its_database_connection(tmp_path: Path) -> None:
    """PostgreSQL ends beat's connection (a server restart, a failover, a pooler): beat logs
    the failed pass, opens a new connection, and goes on picking up edits."""
    from beat_support import _admin_connection
    from django.db import connections

    from celeriac_django.beat.models import IntervalSchedule
    from celeriac_django.beat.models import PeriodicTask

    with beat_and_worker("postgresql", tmp_path) as (alias, group):
        second = IntervalSchedule.objects.using(alias).create(every=1, period="seconds")
        PeriodicTask.objects.using(alias).create(name="before", task=TASK, args=["before"], interval=second)
        wait_for(lambda: hits(tmp_path, "before"), 10, "the first entry ran", lambda: logs(group))
        beat = group.started[1]
        with _admin_connection() as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (alias,),
            ).fetchall()
        connections[alias].close()  # this process's was ended as well
        assert ended, "no connection of beat's to end"
        cut = time.time()
        PeriodicTask.objects.using(alias).create(name="after", task=TASK, args=["after"], interval=second)
        wait_for(
            lambda: _first_after(tmp_path, "after", cut),
            15,
            "the entry added after the cut ran",
            lambda: logs(group),
        )
        assert beat.proc.poll() is None, beat.output()
