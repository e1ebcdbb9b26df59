"""The history file on its own: bounds, retention, reopening, and the task list's paging,
filters, search and order, all done by SQLite (the server side of the tasks page and API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac_dashboard._history import BUCKET
from celeriac_dashboard._history import EVENTS_PER_TASK
from celeriac_dashboard._history import KEEP_SERIES
from celeriac_dashboard._history import History
from celeriac_dashboard._query import TaskQuery

NOW = 1_700_000_000.0


def task(n: int, **fields: Any) -> dict[str, Any]:
    """A task as the monitor stores it (ClusterState's fields), number ``n``."""
    return {
        "uuid": f"task-{n:04d}",
        "name": "proj.add",
        "state": "SUCCESS",
        "worker": "w1@host",
        "received": NOW + n,
        "started": NOW + n + 0.1,
        "timestamp": NOW + n + 0.2,
        "runtime": 0.1,
        "root_id": f"task-{n:04d}",
        "parent_id": None,
        "args": f"({n}, {n})",
        "kwargs": "{}",
        "result": str(2 * n),
        **fields,
    }


def events_of(row: dict[str, Any], kinds: tuple[str, ...] = ("received", "started", "succeeded")) -> list:
    return [
        {"type": f"task-{kind}", "uuid": row["uuid"], "name": row["name"], "timestamp": row["received"] + i}
        for i, kind in enumerate(kinds)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(path: Path) -> Iterator[History]:
    made = History(str(path), max_tasks=100)
    yield made
    made.close()


def _count(history: History, table: str) -> int:
    (n,) = history._rows(f"SELECT COUNT(*) FROM {table}")[0]
    return int(n)


# --- bounds --------------------------------------------------------------------------------


def test_keeps_at_most_max_tasks_the_least_recently_updated_going_first(history: History) -> None:
    for start in range(0, 250, 50):
        rows = [task(n) for n in range(start, start + 50)]
        history.record(rows, [e for row in rows for e in events_of(row)])
    # An old task updated again (a retry, a late event) counts as recent.
    history.record([task(5, state="RETRY")], [])
    history.prune(NOW)
    assert _count(history, "tasks") == 100
    assert history.task("task-0005") is not None
    assert history.task("task-0006") is None and history.task("task-0150") is None
    assert history.task("task-0151") is not None
    assert history.tasks(TaskQuery()).total == 100
    assert _count(history, "events") <= 100 * EVENTS_PER_TASK


def test_the_file_stops_growing_once_full(path: Path) -> None:
    history = History(str(path), max_tasks=200)
    sizes = []
    try:
        for round_ in range(24):
            rows = [task(round_ * 200 + n) for n in range(200)]
            history.record(rows, [e for row in rows for e in events_of(row)])
            history.prune(NOW + round_)
            sizes.append(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")))
    finally:
        history.close()
    # SQLite reuses the pages pruning frees: the file reaches its size and stays there.
    assert sizes[-1] <= sizes[7] * 1.2, sizes


def test_counts_and_queue_samples_are_kept_for_a_week(history: History) -> None:
    old, recent = NOW - KEEP_SERIES - 3600, NOW - 3600
    for at in (old, recent):
        row = task(int(at - NOW) % 10_000, received=at)
        history.record([row], events_of(row))
        history.sample_queues({"celery": 3}, at)
    history.prune(NOW)
    buckets = {bucket for bucket, _name, _kind, _n in history.counts(0)}
    assert buckets == {int(recent) // BUCKET * BUCKET}
    assert [at for at, _q, _n in history.queue_samples(0)] == [recent]


def test_counts_add_up_per_bucket_task_and_event_kind(history: History) -> None:
    rows = [task(n, received=NOW) for n in range(3)]
    history.record(rows, [e for row in rows for e in events_of(row, ("received", "succeeded"))])
    # Events carry no name after task-received: the batch's rows give it, as the monitor sends them.
    failed = {"type": "task-failed", "uuid": "task-0003", "timestamp": NOW}
    history.record([task(3, received=NOW, name="proj.fail", state="FAILURE")], [failed])
    bucket = int(NOW) // BUCKET * BUCKET
    assert sorted(history.counts(0)) == [
        (bucket, "proj.add", "received", 3),
        (bucket, "proj.add", "succeeded", 3),
        (bucket, "proj.fail", "failed", 1),
    ]


# --- reopening (a restart) -----------------------------------------------------------------


def test_reopening_the_file_keeps_everything_and_goes_on_counting(path: Path) -> None:
    first = History(str(path), max_tasks=100)
    rows = [task(n) for n in range(10)]
    first.record(rows, [e for row in rows for e in events_of(row)], [{"hostname": "w1@host", "active": 0}])
    first.sample_queues({"celery": 4}, NOW)
    before = (first.tasks(TaskQuery()), first.events_of(["task-0003"]))
    before += (first.counts(0), first.workers())
    first.close()

    second = History(str(path), max_tasks=100)
    try:
        after = (second.tasks(TaskQuery()), second.events_of(["task-0003"]))
        after += (second.counts(0), second.workers())
        assert after == before
        assert second.queue_samples(0) == [(NOW, "celery", 4)]
        # An update after the restart is the most recent, as it would have been before it.
        second.record([task(0, state="RETRY")], [])
        assert second.tasks(TaskQuery(limit=1)).tasks[0]["uuid"] == "task-0000"
    finally:
        second.close()


# --- the task list: paging, filters, search, order -----------------------------------------


@pytest.fixture
def filled(history: History) -> History:
    """Thirty tasks: two names, three states, two workers, arguments with % and _ in them."""
    rows = []
    for n in range(30):
        rows.append(
            task(
                n,
                name="proj.add" if n % 2 else "proj.mul",
                state=("SUCCESS", "FAILURE", "RETRY")[n % 3],
                worker="w1@host" if n < 15 else "w2@host",
                args=f"({n}, 'x')" if n != 7 else "('100%', 'a_b')",
                result="done" if n != 8 else "needle in the result",
            )
        )
    history.record(rows, [])
    return history


def _ids(history: History, **query: Any) -> list[int]:
    return [int(t["uuid"].removeprefix("task-")) for t in history.tasks(TaskQuery(**query)).tasks]


def test_pages_are_disjoint_newest_first_with_the_total(filled: History) -> None:
    pages = [filled.tasks(TaskQuery(limit=12, offset=offset)) for offset in (0, 12, 24)]
    assert [page.total for page in pages] == [30, 30, 30]
    ids = [int(t["uuid"][5:]) for page in pages for t in page.tasks]
    assert ids == list(range(29, -1, -1))
    assert _ids(filled, offset=28) == [1, 0]  # an offset without a limit: the rest


def test_filters_by_state_name_worker_and_received_time(filled: History) -> None:
    failed_adds = [n for n in range(29, -1, -1) if n % 3 == 1 and n % 2]
    assert _ids(filled, state="FAILURE", name="proj.add") == failed_adds
    assert _ids(filled, worker="w2@host", limit=3) == [29, 28, 27]
    assert _ids(filled, received_start=NOW + 10, received_end=NOW + 12) == [12, 11, 10]
    assert filled.tasks(TaskQuery(state="FAILURE", worker="w1@host")).total == 5


def test_search_words_fields_and_literal_wildcards(filled: History) -> None:
    assert _ids(filled, search="needle") == [8]  # in the result
    assert _ids(filled, search="100%") == [7]  # % is a character, not a wildcard
    assert _ids(filled, search="a_b") == [7]
    assert _ids(filled, search="%") == [7] and _ids(filled, search="_") == [7]
    assert _ids(filled, search="task-0012") == [12]  # by id
    assert _ids(filled, search="uuid:task-0012") == [12]
    assert _ids(filled, search="state:failure name:mul worker:w2") == [28, 22, 16]
    assert _ids(filled, search="args:'x' (19,") == [19]  # every term must match
    assert _ids(filled, search="10:30") == []  # a time, not a field
    with pytest.raises(ValueError, match="unknown search field 'colour'"):
        filled.tasks(TaskQuery(search="colour:red"))


def test_order_by_an_allowed_key_only(filled: History) -> None:
    assert _ids(filled, sort_by="received", limit=3) == [0, 1, 2]
    assert _ids(filled, sort_by="-received", limit=3) == [29, 28, 27]
    assert _ids(filled, sort_by="name", limit=1) == [29]  # proj.add first, newest first within
    for bad in ("uuid", "received; DROP TABLE tasks", "-runtime"):
        with pytest.raises(ValueError, match="Invalid sort_by"):
            filled.tasks(TaskQuery(sort_by=bad))
    assert filled.tasks(TaskQuery()).total == 30


def test_children_and_family_of_a_workflow(history: History) -> None:
    root = task(1)
    children = [task(n, root_id="task-0001", parent_id="task-0001") for n in (2, 3)]
    grandchild = task(4, root_id="task-0001", parent_id="task-0003")
    history.record([root, *children, grandchild, task(5)], [])
    assert history.children("task-0001") == ["task-0002", "task-0003"]
    family = [t["uuid"] for t in history.family("task-0001")]
    assert family == ["task-0001", "task-0002", "task-0003", "task-0004"]
