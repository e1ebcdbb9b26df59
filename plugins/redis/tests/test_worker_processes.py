"""Real worker processes on a real Redis: crashes, leases, poison messages, ETAs, bad input, restarts."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from celeriac import states
from celeriac.plugin import Envelope
from celeriac.testing import wait_for

from .conftest import RedisServer
from .conftest import WorkerProcess
from .conftest import write_project

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_worker_runs_tasks_and_survives_bad_input(
    client: Any, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker("-c", "4")
    client.transport.publish(
        "celery",
        [
            Envelope(body=b'{"a": 1}', content_type="application/json", headers={}),  # not protocol 2
            Envelope(
                body=b"\x80", content_type="application/x-python-serialize", headers={"id": "p", "task": "x"}
            ),
            Envelope(body=b"{oops", content_type="application/json", headers={"id": "j", "task": "proj.add"}),
        ],
    )
    results = [client.send_task("proj.add", (n, n)) for n in range(100)]
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(100)]
    reasons = [letter.reason for letter in client.transport.dead_letters(queue="celery")]
    assert len(reasons) == 3
    assert any("not a task message: it has no headers" in reason for reason in reasons)
    assert any("refused content type" in reason for reason in reasons)
    assert any("JSON" in reason or "json" in reason for reason in reasons)
    assert worker.proc.poll() is None
    assert worker.output().count("dead-lettering message") == 3  # logged once each


def test_task_of_a_worker_killed_mid_task_runs_again(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    first = start_worker("-c", "1")
    result = client.send_task("proj.slow", (1.0,), {"marker": str(marker)})
    wait_for(lambda: _started(marker), what="task start")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert result.state == states.PENDING
    started = time.monotonic()
    start_worker("-c", "1")  # the lease (visibility_timeout = 2 s) runs out and it is reclaimed
    assert result.get(timeout=30) == 1.0
    pids = _lines(marker)
    assert len(pids) == 2 and pids[0] != pids[1]
    assert time.monotonic() - started < 10


def test_long_task_keeps_its_lease_while_its_worker_lives(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    start_worker("-c", "1")
    start_worker("-c", "1")
    # Twice the visibility timeout: lease renewal must keep the other worker off it.
    assert client.send_task("proj.slow", (4.0,), {"marker": str(marker)}).get(timeout=30) == 4.0
    assert len(_lines(marker)) == 1


def test_delayed_longer_than_the_visibility_timeout_runs_once(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    start_worker("-c", "2")
    start_worker("-c", "2")
    sent = time.monotonic()
    result = client.send_task("proj.slow", (0.0,), {"marker": str(marker)}, countdown=5.0)
    assert client.transport.queue_length("celery") == 1  # waiting in Redis, held by no worker
    assert result.get(timeout=30) == 0.0
    assert time.monotonic() - sent >= 4.9
    time.sleep(2.5)  # longer than the visibility timeout: a duplicate would have shown by now
    assert len(_lines(marker)) == 1


def test_poison_message_is_dead_lettered_after_max_deliveries(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    toml = project / "celeriac.toml"
    toml.write_text(toml.read_text().replace("visibility_timeout = 2.0", "visibility_timeout = 1.0"))
    toml.write_text(toml.read_text().replace("[worker]\n", "[worker]\nmax_deliveries = 2\n"))
    result = client.send_task("proj.die", (str(marker),))
    for attempt in (1, 2):
        # Not waiting for "ready": the worker may take the task, and die, before it logs that.
        worker = start_worker("-c", "1", ready=False)
        wait_for(lambda n=attempt: len(_lines(marker)) == n, 15, f"delivery {attempt}")  # type: ignore[misc]
        worker.proc.wait(timeout=10)  # the task killed it
    survivor = start_worker("-c", "1")
    wait_for(lambda: bool(client.transport.dead_letters(queue="celery")), 15, "dead letter")
    [letter] = client.transport.dead_letters(queue="celery")
    assert "started 2 times without finishing" in letter.reason
    assert len(_lines(marker)) == 2  # not run a third time
    assert result.state == states.FAILURE
    assert survivor.proc.poll() is None


def test_no_task_lost_across_a_redis_restart(
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    write_project(tmp_path, redis_server.url, "restart:")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import sys

    sys.modules.pop("proj", None)
    import proj

    app = proj.app
    try:
        start_worker("-c", "2")
        results = [app.send_task("proj.slow", (0.02,)) for _ in range(150)]
        wait_for(lambda: sum(r.ready() for r in results) >= 20, 20, "some tasks done")
        redis_server.stop(signal.SIGKILL)  # appendfsync always: every acknowledged write is on disk
        time.sleep(0.5)
        redis_server.start()
        results += [app.send_task("proj.slow", (0.0,)) for _ in range(50)]
        for result in results:
            assert result.get(timeout=60) in (0.02, 0.0)
        check = redis.Redis.from_url(redis_server.url)
        wait_for(lambda: app.transport.queue_length("celery") == 0, 10, "queue drained")
        wait_for(lambda: check.xpending("restart:{celery}:0", "celeriac")["pending"] == 0, 10, "all acked")
        check.close()
    finally:
        app.close()
        sys.modules.pop("proj", None)


def _started(marker: Path) -> bool:
    """Has the task written its pid? (It creates the file before writing to it.)"""
    return marker.exists() and bool(marker.read_text().strip())


def test_a_prefork_childs_first_task_finds_the_result_store_loaded(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    """The zygote builds the result store before it forks children, so a child does not
    import redis-py on its first task (0.6 s on the benchmark machine)."""
    config = project / "celeriac.toml"
    config.write_text(config.read_text().replace('"threads"]', '"threads", "prefork"]'))
    start_worker("-P", "prefork", "-c", "1")
    assert client.send_task("proj.store_modules_loaded").get(timeout=20) is True


def test_prefork_children_hand_their_results_to_the_worker_to_write(
    client: Any, project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    """A prefork worker's children send their final records to it, which writes them many
    to a round trip (celeriac_prefork._writes); failures and results read back as usual."""
    config = project / "celeriac.toml"
    config.write_text(config.read_text().replace('"threads"]', '"threads", "prefork"]'))
    start_worker("-P", "prefork", "-c", "2")
    results = [client.send_task("proj.add", (n, n)) for n in range(300)]
    assert [r.get(timeout=30) for r in results] == [2 * n for n in range(300)]
    failed = client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    assert failed.state == states.FAILURE
