"""The beat service on a fake clock: what it sends, when, and what it remembers.

The broker is in memory; last-run times go to a real SQLite file (with its leader lock),
or to a lock-less in-memory store where a test says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac._beat.beat import Beat
from celeriac._beat.entries import run_id
from celeriac._client.periodic import add_periodic_task
from celeriac_sqlite import SqliteScheduleStore

from .conftest import T0
from .conftest import FakeClock
from .conftest import MemoryStorePlugin
from .conftest import drain
from .conftest import run_at

MakeApp = Callable[..., Celeriac]


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat()


def _whens(app: Celeriac) -> list[str]:
    return [run_at(message) for message in drain(app)]


def test_sends_a_due_run_with_its_options_and_a_stable_id(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app(
        """
        [beat.schedule.report]
        task = "proj.report"
        every = "10s"
        args = [1, 2]
        kwargs = { full = true }
        queue = "periodic"
        priority = 5
        expires = 60
        """
    )
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    assert drain(app, "periodic") == []  # an interval's first run is one interval after start
    clock.advance(10)
    beat.tick()
    [message] = drain(app, "periodic")
    assert (message.task, message.args, dict(message.kwargs)) == ("proj.report", (1, 2), {"full": True})
    assert message.priority == 5 and message.expires is not None
    assert message.id == run_id("report", T0 + 10)
    assert message.extra_headers == {"beat_entry": "report", "beat_run_at": _iso(T0 + 10)}
    beat.close()


def test_sleeps_until_the_nearest_due_time(make_app: MakeApp, clock: FakeClock) -> None:
    memory = MemoryStorePlugin()
    app = make_app(
        '[beat]\nmax_interval = 60\n[beat.schedule.a]\ntask = "a"\nevery = "10s"\n'
        '[beat.schedule.b]\ntask = "b"\ncron = "* * * * *"\n',
        plugins=[memory],
    )
    beat = Beat(app, schedule_store="memstore://", clock=clock)
    assert beat.tick() == pytest.approx(10)
    clock.advance(10)
    assert beat.tick() == pytest.approx(10)
    clock.advance(10)
    assert beat.tick() == pytest.approx(10)  # b at 10:01:00, 40 s away; a again in 10 s
    assert Beat(app, schedule_store="memstore://", max_interval=3, clock=clock).tick() == pytest.approx(3)
    assert memory.store.runs == {"a": T0 + 20}


def test_a_store_without_lock_works_and_says_so(
    make_app: MakeApp, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n', plugins=[MemoryStorePlugin()])
    with caplog.at_level(logging.WARNING, logger="celeriac._beat.beat"):
        beat = Beat(app, schedule_store="memstore://", clock=clock)
        beat.tick()
        clock.advance(1)
        beat.tick()
    assert "has no leader lock: run a single beat" in caplog.text
    assert _whens(app) == [_iso(T0 + 1)]


def test_cadence_does_not_drift(make_app: MakeApp, store_url: str, clock: FakeClock) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = "10s"\n')
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    for late in (10.7, 10.4, 9.9):  # woken a little late each time
        clock.advance(late)
        beat.tick()
    assert _whens(app) == [_iso(T0 + 10), _iso(T0 + 20), _iso(T0 + 30)]
    beat.close()


def test_last_runs_survive_a_restart(make_app: MakeApp, store_url: str, clock: FakeClock) -> None:
    app = make_app(
        '[beat.schedule.a]\ntask = "a"\nevery = "10s"\n[beat.schedule.n]\ntask = "n"\ncron = "*/1 * * * *"\n'
    )
    first = Beat(app, schedule_store=store_url, clock=clock)
    first.tick()
    clock.advance(20)
    first.tick()
    first.close()
    assert _whens(app) == [_iso(T0 + 10), _iso(T0 + 20)]
    clock.advance(5)
    second = Beat(app, schedule_store=store_url, clock=clock)
    second.tick()
    assert _whens(app) == []  # nothing is due again after the restart
    clock.advance(5)
    second.tick()
    assert _whens(app) == [_iso(T0 + 30)]  # the old cadence, not one anchored at the restart
    clock.advance(12)
    second.tick()
    assert _whens(app) == [_iso(T0 + 40)]  # 2 s late: on time, at its scheduled time
    clock.advance(18)
    second.tick()
    # The interval's runs at T0+50 (10 s late, within the grace of 15 s) and T0+60, and the
    # minute's first run.
    assert sorted(_whens(app)) == [_iso(T0 + 50), _iso(T0 + 60), _iso(T0 + 60)]
    second.close()


@pytest.mark.parametrize(("policy", "expected"), [("run_once", 1), ("skip", 0)])
def test_missed_runs_after_downtime(
    make_app: MakeApp, store_url: str, clock: FakeClock, policy: str, expected: int
) -> None:
    app = make_app(
        f'[beat.schedule.nightly]\ntask = "n"\ncron = "0 3 * * *"\nmissed = "{policy}"\n'
        f'[beat.schedule.minutely]\ntask = "m"\ncron = "* * * * *"\nmissed = "{policy}"\n'
    )
    store = SqliteScheduleStore(store_url, app.config)
    yesterday = T0 - 86400 - 7 * 3600  # 2025-06-01 03:00: ran then; beat was down since
    store.set_last_run_at("nightly", yesterday)
    store.set_last_run_at("minutely", yesterday)
    store.close()
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    sent = drain(app)
    # One run of each at most, however many were missed (a day of minutes here).
    assert sorted(m.task for m in sent) == sorted(["n", "m"] * expected)
    assert all(run_at(m) == _iso(T0) for m in sent)
    clock.advance(17 * 3600)  # 2025-06-03 03:00
    beat.tick()
    assert "n" in [m.task for m in drain(app)]  # then the normal schedule
    beat.close()


def test_runs_late_by_less_than_the_grace_are_all_sent(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app('[beat]\ngrace = 15\n[beat.schedule.a]\ntask = "a"\nevery = 1\nmissed = "skip"\n')
    store = SqliteScheduleStore(store_url, app.config)
    store.set_last_run_at("a", T0 - 6)  # a leader change took 6 s
    store.close()
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    assert _whens(app) == [_iso(T0 - n) for n in range(5, -1, -1)]  # none skipped, none twice
    beat.close()


@pytest.mark.parametrize(("policy", "expected"), [("run_once", 1), ("skip", 0)])
def test_a_clocked_time_that_passed_while_beat_was_down(
    make_app: MakeApp, store_url: str, clock: FakeClock, policy: str, expected: int
) -> None:
    app = make_app(f'[beat.schedule.once]\ntask = "o"\nclocked = 2025-06-01T09:00:00Z\nmissed = "{policy}"\n')
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    clock.advance(3600)
    beat.tick()
    assert len(drain(app)) == expected
    beat.close()


def test_a_clocked_entry_runs_once_even_across_restarts(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app('[beat.schedule.once]\ntask = "o"\nclocked = 2025-06-02T10:00:05Z\n')
    beat = Beat(app, schedule_store=store_url, clock=clock)
    assert beat.tick() <= 5
    clock.advance(5)
    beat.tick()
    beat.close()
    clock.advance(100)
    again = Beat(app, schedule_store=store_url, clock=clock)
    again.tick()
    again.close()
    assert _whens(app) == [_iso(T0 + 5)]


def test_entries_follow_their_time_zone(make_app: MakeApp, store_url: str, clock: FakeClock) -> None:
    app = make_app(
        '[beat]\ntimezone = "Europe/Berlin"\n'
        '[beat.schedule.berlin]\ntask = "b"\ncron = "0 13 * * *"\n'  # 11:00 UTC in summer
        '[beat.schedule.ny]\ntask = "n"\ncron = "0 7 * * *"\ntimezone = "America/New_York"\n'  # 11:00 UTC
        '[beat.schedule.utc]\ntask = "u"\ncron = "0 11 * * *"\ntimezone = "UTC"\n'
    )
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    clock.advance(3600)  # 11:00 UTC
    beat.tick()
    assert sorted(m.task for m in drain(app)) == ["b", "n", "u"]
    beat.close()


def test_a_broker_error_is_retried_and_the_run_is_not_lost(
    make_app: MakeApp, store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    real = app.send_task
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["task_id"])
        if len(calls) == 1:
            raise ConnectionError("broker down")
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "send_task", flaky)
    clock.advance(1)
    assert beat.tick() == 1.0  # the retry delay
    assert _whens(app) == []
    beat.tick()
    assert _whens(app) == [_iso(T0 + 1)]
    assert calls[0] == calls[1]  # the same run, the same id
    beat.close()


# --- the lock, on one fake clock ------------------------------------------------------------


def test_only_the_leader_sends_and_the_standby_takes_over(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app('[beat]\nlease = 0.3\nrenew_interval = 0.1\n[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    leader = Beat(app, schedule_store=store_url, clock=clock, owner="leader")
    standby = Beat(app, schedule_store=store_url, clock=clock, owner="standby")
    leader.tick()
    standby.tick()
    assert (leader.is_leader, standby.is_leader) == (True, False)
    for _ in range(3):
        clock.advance(1)
        leader.tick()
        standby.tick()
    time.sleep(0.4)  # the leader dies without a word: its lease (real time) runs out
    clock.advance(2)  # runs at T0+4 and T0+5 fell due meanwhile
    standby.tick()
    assert standby.is_leader
    clock.advance(1)
    standby.tick()
    assert _whens(app) == [_iso(T0 + n) for n in range(1, 7)]
    assert (leader.sent, standby.sent) == (3, 3)
    standby.close()


def test_a_leader_that_lost_its_lease_cannot_send(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    beat = Beat(app, schedule_store=store_url, clock=clock, owner="old")
    beat.tick()
    other = SqliteScheduleStore(store_url, app.config)
    other.release("beat", "old")  # as if its lease ran out while it was paused...
    assert other.acquire("beat", "new", 60)  # ...and another instance took over
    clock.advance(1)
    beat.tick()  # still believes it leads (no renewal due yet): the claim fences it off
    assert _whens(app) == []
    assert not beat.is_leader
    assert beat.tick() == beat.config.renew_interval  # standing by
    other.close()
    beat.close()


def test_a_run_claimed_by_a_leader_that_died_is_sent_by_the_next(
    make_app: MakeApp, store_url: str, clock: FakeClock
) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n[beat.schedule.old]\ntask = "o"\nevery = 1\n')
    store = SqliteScheduleStore(store_url, app.config)
    store.set_last_run_at("a", T0 - 2)
    store.set_last_run_at("old", T0 - 3600)
    assert store.acquire("beat", "dead", 0.05)
    assert store.claim("beat", "dead", "a", T0 - 1)  # claimed, then killed before recording
    assert store.claim("beat", "dead", "old", T0 - 3599)  # long ago: beyond the grace
    time.sleep(0.1)
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    sent = {(m.task, run_at(m)): m.id for m in drain(app)}
    assert sent[("a", _iso(T0 - 1))] == run_id("a", T0 - 1)  # sent again, with its id
    assert ("a", _iso(T0)) in sent
    assert ("o", _iso(T0 - 3599)) not in sent
    assert ("o", _iso(T0)) in sent  # the missed-run policy (run_once) for the stale one
    assert store.last_run_at("a") == T0
    store.close()
    beat.close()


def test_closing_releases_the_lock(make_app: MakeApp, store_url: str, clock: FakeClock) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    first = Beat(app, schedule_store=store_url, clock=clock)
    first.tick()
    first.close()
    second = Beat(app, schedule_store=store_url, clock=clock)
    second.tick()
    assert second.is_leader  # at once, not after the lease
    second.close()


def test_code_entries_are_sent(make_app: MakeApp, store_url: str, clock: FakeClock) -> None:
    app = make_app()
    add_periodic_task(app, 2, "proj.ping", (1,), name="ping")
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    clock.advance(2)
    beat.tick()
    [message] = drain(app)
    assert (message.task, message.args) == ("proj.ping", (1,))
    beat.close()


def test_reload_reads_the_schedule_again(
    make_app: MakeApp, store_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    beat = Beat(app, schedule_store=store_url, clock=clock)
    beat.tick()
    assert app.config_file is not None
    app.config_file.write_text('[beat.schedule.b]\ntask = "b"\nevery = 2\n')
    beat.reload()
    assert [entry.name for entry in beat.entries] == ["b"]
    clock.advance(2)
    beat.tick()
    assert [m.task for m in drain(app)] == ["b"]
    app.config_file.write_text('[beat.schedule.c]\ntask = "c"\n')  # no schedule: refused
    with caplog.at_level(logging.ERROR, logger="celeriac._beat.beat"):
        beat.reload()
    assert [entry.name for entry in beat.entries] == ["b"]
    assert "keeping the current one" in caplog.text and "beat entry 'c'" in caplog.text
    beat.close()


def _flaky_records(
    make_app: MakeApp,
    store_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    refuse: Callable[[list[float]], bool],
    owner: str | None = None,
) -> tuple[Celeriac, Beat, Any, list[float]]:
    """A beat with one entry ``a`` every second, open, whose store refuses a run's record
    ("database is locked") whenever ``refuse(calls)`` is true, ``calls`` being the run times
    asked so far, this one last; returns the app, the beat, its store and ``calls``."""
    app = make_app('[beat.schedule.a]\ntask = "a"\nevery = 1\n')
    beat = Beat(app, schedule_store=store_url, clock=clock, owner=owner)
    beat.tick()
    store = beat._store
    assert store is not None
    real = store.set_last_run_at
    calls: list[float] = []

    def record(entry: str, when: float) -> None:
        calls.append(when)
        if refuse(calls):
            raise OSError("database is locked")
        real(entry, when)

    monkeypatch.setattr(store, "set_last_run_at", record)
    return app, beat, store, calls


def test_a_run_sent_but_not_recorded_is_not_sent_again(
    make_app: MakeApp, store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses the record of a run just sent (busy, unreachable): beat goes on from
    that run, not before it (which would run it twice), and records it when the store is back."""
    refusing = True
    app, beat, store, _ = _flaky_records(make_app, store_url, clock, monkeypatch, lambda calls: refusing)
    clock.advance(1)
    beat.tick()
    beat.tick()
    assert _whens(app) == [_iso(T0 + 1)]  # once
    assert store.last_run_at("a") is None
    refusing = False
    beat.tick()  # nothing new is due; the record goes in
    assert store.last_run_at("a") == T0 + 1
    clock.advance(1)
    beat.tick()
    assert _whens(app) == [_iso(T0 + 2)]
    assert store.last_run_at("a") == T0 + 2
    beat.close()


def test_a_later_record_replaces_an_earlier_one_that_failed(
    make_app: MakeApp, store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's record fails and the next run's succeeds: the earlier one is not written over it."""
    app, beat, store, asked = _flaky_records(
        make_app, store_url, clock, monkeypatch, lambda calls: len(calls) == 1
    )
    clock.advance(2)  # two runs due in one pass: the first one's record fails
    beat.tick()
    assert _whens(app) == [_iso(T0 + 1), _iso(T0 + 2)]
    beat.tick()
    assert asked == [T0 + 1, T0 + 2]  # the later record stands; the earlier is not retried
    assert store.last_run_at("a") == T0 + 2
    beat.close()


def test_a_record_left_over_is_not_written_after_another_leader_took_over(
    make_app: MakeApp, store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader's record failed and another instance has led since: stopping, the old leader
    does not write its older run over the new leader's record."""
    refusing = True
    app, beat, store, _ = _flaky_records(
        make_app, store_url, clock, monkeypatch, lambda calls: refusing, owner="old"
    )
    clock.advance(1)
    beat.tick()
    assert _whens(app) == [_iso(T0 + 1)]
    assert store.last_run_at("a") is None  # sent; its record refused
    other = SqliteScheduleStore(store_url, app.config)
    other.release("beat", "old")  # its lease ran out while it could not reach the store...
    assert other.acquire("beat", "new", 60)  # ...another took over, sent and recorded T0+5
    other.set_last_run_at("a", T0 + 5)
    refusing = False
    beat.close()
    assert other.last_run_at("a") == T0 + 5
    other.close()
