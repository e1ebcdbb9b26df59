"""ClusterState folded from realistic event sequences."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import states
from celeriac_events import ClusterState

T0 = 1_700_000_000.0


def ev(type_: str, t: float, hostname: str = "w1@h", **fields: Any) -> dict[str, Any]:
    stamps = {"type": type_, "timestamp": T0 + t, "hostname": hostname, "utcoffset": 0, "pid": 42, "clock": 1}
    return stamps | fields


def lifecycle() -> list[dict[str, Any]]:
    """Two workers; an add that succeeds, a boom that fails, a flaky task retried then done."""
    return [
        ev("worker-online", 0, sw_ident="celeriac", sw_ver="0.1.0"),
        ev("worker-online", 0.1, "w2@h", sw_ident="py-celery", sw_ver="5.4.0"),
        ev("task-received", 1, uuid="a", name="proj.add", args="(1, 2)", kwargs="{}", retries=0),
        ev("task-started", 1.1, uuid="a"),
        ev("task-succeeded", 1.2, uuid="a", runtime=0.1, result="3"),
        ev("task-received", 2, uuid="b", name="proj.boom", args="()", kwargs="{}"),
        ev("task-started", 2.1, uuid="b"),
        ev("task-failed", 2.2, uuid="b", exception="ValueError('boom')", traceback="Traceback ..."),
        ev("task-received", 3, uuid="c", name="proj.flaky", args="()", kwargs="{'n': 1}", retries=0),
        ev("task-started", 3.1, uuid="c"),
        ev("task-retried", 3.2, uuid="c", exception="IOError('again')"),
        ev("task-received", 4, "w2@h", uuid="c", name="proj.flaky", args="()", kwargs="{'n': 1}", retries=1),
        ev("task-started", 4.1, "w2@h", uuid="c"),
        ev("task-succeeded", 4.3, "w2@h", uuid="c", runtime=0.2),
        ev("worker-heartbeat", 5, freq=2.0, active=0, processed=3, loadavg=[0.5, 0.4, 0.3], sw_ident="x"),
        ev("worker-heartbeat", 5, "w2@h", freq=2.0, active=1, processed=1, loadavg=[1, 1, 1]),
    ]


def test_tasks_from_a_lifecycle() -> None:
    state = ClusterState()
    state.apply_all(lifecycle())
    add, boom, flaky = state.tasks["a"], state.tasks["b"], state.tasks["c"]
    assert (add.name, add.state, add.args, add.kwargs) == ("proj.add", "SUCCESS", "(1, 2)", "{}")
    assert add.result == "3"
    assert (add.received, add.started, add.succeeded) == (T0 + 1, T0 + 1.1, T0 + 1.2)
    assert add.runtime == 0.1 and add.worker == "w1@h"
    assert (boom.state, boom.exception, boom.traceback) == ("FAILURE", "ValueError('boom')", "Traceback ...")
    assert boom.failed == T0 + 2.2
    # The retry happened on w1, the successful run on w2.
    assert (flaky.state, flaky.retries, flaky.worker, flaky.runtime) == ("SUCCESS", 1, "w2@h", 0.2)
    assert flaky.retried == T0 + 3.2 and flaky.exception == "IOError('again')"
    assert state.task_counts == {"SUCCESS": 2, "FAILURE": 1}
    assert state.task_counts_by_name == {
        "proj.add": {"SUCCESS": 1},
        "proj.boom": {"FAILURE": 1},
        "proj.flaky": {"SUCCESS": 1},
    }
    assert [t.uuid for t in state.recent_tasks()] == ["c", "b", "a"]
    assert [t.uuid for t in state.tasks_in(states.FAILURE)] == ["b"]
    assert state.event_count == len(lifecycle())


def test_workers_from_a_lifecycle() -> None:
    state = ClusterState()
    state.apply_all(lifecycle())
    w1, w2 = state.workers["w1@h"], state.workers["w2@h"]
    assert (w1.sw_ident, w1.sw_ver, w1.pid) == ("x", "0.1.0", 42)  # the latest event's values
    assert (w1.active, w1.processed, w1.loadavg, w1.freq) == (0, 3, (0.5, 0.4, 0.3), 2.0)
    assert (w2.sw_ident, w2.active, w2.processed) == ("py-celery", 1, 1)
    assert w1.last_heartbeat == T0 + 5
    assert {w.hostname for w in state.alive_workers(T0 + 6)} == {"w1@h", "w2@h"}


def test_a_worker_is_offline_after_three_missed_heartbeats_or_when_it_says_so() -> None:
    state = ClusterState()
    state.apply(ev("worker-heartbeat", 0, freq=2.0))
    state.apply(ev("worker-heartbeat", 0, "w2@h", freq=1.0))
    assert state.workers["w1@h"].alive(T0 + 6.0)
    assert not state.workers["w1@h"].alive(T0 + 6.1)
    assert not state.workers["w2@h"].alive(T0 + 3.1)  # its own frequency counts
    state.apply(ev("worker-offline", 1))
    assert not state.workers["w1@h"].online
    assert not state.workers["w1@h"].alive(T0 + 1)
    state.apply(ev("worker-online", 10))  # restarted under the same name
    assert state.workers["w1@h"].alive(T0 + 10)


def test_liveness_uses_the_local_receive_time_when_given() -> None:
    state = ClusterState()
    # The worker's clock is an hour behind ours: its own timestamp would look stale.
    state.apply(ev("worker-heartbeat", -3600, freq=2.0), now=T0)
    assert state.workers["w1@h"].alive(T0 + 1)
    assert state.workers["w1@h"].last_heartbeat == T0 - 3600


def test_late_events_do_not_move_the_state_back() -> None:
    state = ClusterState()
    state.apply(ev("task-succeeded", 2, uuid="x", runtime=0.5))
    assert state.tasks["x"].name is None  # not known yet: counted by state only
    assert state.task_counts_by_name == {}
    state.apply(ev("task-started", 1.5, uuid="x"))
    state.apply(ev("task-received", 1, uuid="x", name="proj.late", args="(1,)", kwargs="{}"))
    task = state.tasks["x"]
    assert task.state == states.SUCCESS
    assert (task.name, task.args, task.received, task.started) == ("proj.late", "(1,)", T0 + 1, T0 + 1.5)
    assert task.timestamp == T0 + 2
    assert state.task_counts == {"SUCCESS": 1}
    assert state.task_counts_by_name == {"proj.late": {"SUCCESS": 1}}


def test_sent_revoked_and_rejected() -> None:
    state = ClusterState()
    state.apply(ev("task-sent", 0, "client@h", uuid="s", name="proj.add", queue="celery", retries=0))
    assert (state.tasks["s"].state, state.tasks["s"].client, state.tasks["s"].worker) == (
        "PENDING",
        "client@h",
        None,
    )
    assert "client@h" not in state.workers  # a client is not a worker
    state.apply(ev("task-revoked", 1, uuid="s", terminated=False, signum=None, expired=True))
    assert (state.tasks["s"].state, state.tasks["s"].expired) == ("REVOKED", True)
    state.apply(ev("task-rejected", 2, uuid="r", requeue=False))
    assert (state.tasks["r"].state, state.tasks["r"].requeue) == ("REJECTED", False)


def test_custom_task_events_name_their_state() -> None:
    state = ClusterState()
    state.apply(ev("task-received", 0, uuid="p", name="proj.p"))
    state.apply(ev("task-progress", 1, uuid="p", done=3))
    assert state.tasks["p"].state == "PROGRESS"


def test_tasks_are_bounded_and_counts_follow() -> None:
    state = ClusterState(max_tasks=3)
    for n in range(5):
        state.apply(ev("task-received", n, uuid=f"t{n}", name="proj.n"))
    state.apply(ev("task-succeeded", 5, uuid="t2", runtime=0.1))  # updated: kept longest now
    state.apply(ev("task-received", 6, uuid="t5", name="proj.n"))
    assert list(state.tasks) == ["t4", "t2", "t5"]
    assert state.task_counts == {"RECEIVED": 2, "SUCCESS": 1}
    assert state.task_counts_by_name == {"proj.n": {"RECEIVED": 2, "SUCCESS": 1}}
    assert [t.uuid for t in state.recent_tasks(2)] == ["t5", "t2"]


def test_what_is_not_an_event_is_counted_and_ignored() -> None:
    state = ClusterState()
    state.apply({"type": "task-started"})  # no uuid
    state.apply({"type": "worker-heartbeat"})  # no hostname
    state.apply({"type": "something-else", "hostname": "x"})
    assert state.event_count == 3
    assert not state.tasks and not state.workers


def test_max_tasks_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClusterState(max_tasks=0)
