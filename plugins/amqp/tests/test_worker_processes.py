"""Real worker processes on a real RabbitMQ: tasks, countdowns, bad input, SIGKILL, dropped connections."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from celeriac import states
from celeriac.plugin import Envelope
from celeriac.testing import wait_for

from .conftest import WorkerProcess
from .conftest import celeriac_worker

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_worker_runs_tasks_countdowns_and_survives_bad_input(
    client: Any, queue_name: str, start_process: Callable[..., WorkerProcess]
) -> None:
    worker = start_process(celeriac_worker("-c", "4"))
    client.transport.publish(
        queue_name,
        [Envelope(body=b"{oops", content_type="application/json", headers={"id": "j", "task": "proj.add"})],
    )
    results = [client.send_task("proj.add", (n, n)) for n in range(50)]
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(50)]
    assert client.send_task("proj.greet", ("ann",), {"punctuation": "."}).get(timeout=20) == "hello ann."
    sent = time.monotonic()
    later = client.send_task("proj.add", (1, 1), countdown=1.5)
    time.sleep(1.0)
    assert later.state == states.PENDING  # not run before its countdown
    assert later.get(timeout=20) == 2
    assert time.monotonic() - sent >= 1.5
    failed = client.send_task("proj.fail")
    with pytest.raises(ValueError, match="broken on purpose"):
        failed.get(timeout=20)
    [letter] = client.transport.dead_letters(queue=queue_name)
    assert "JSON" in letter.reason or "json" in letter.reason
    assert worker.proc.poll() is None


def test_task_of_a_worker_killed_mid_task_runs_again(
    client: Any, project: Path, start_process: Callable[..., WorkerProcess]
) -> None:
    marker = project / "attempts.txt"
    first = start_process(celeriac_worker("-c", "1"))
    result = client.send_task("proj.slow", (1.0,), {"marker": str(marker)})
    wait_for(lambda: _started(marker), what="task start")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert result.state == states.PENDING
    start_process(celeriac_worker("-c", "1"))  # RabbitMQ requeued the dead connection's message
    assert result.get(timeout=30) == 1.0
    pids = marker.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl (a local RabbitMQ)")
def test_worker_survives_a_dropped_connection(
    client: Any, amqp_url: str, queue_name: str, start_process: Callable[..., WorkerProcess]
) -> None:
    worker = start_process(celeriac_worker("-c", "4"))
    first = [client.send_task("proj.slow", (0.3,)) for _ in range(8)]
    # The connection drops while the worker holds some of them.
    wait_for(lambda: client.transport.queue_length(queue_name) < 8, 10, "some taken by the worker")
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).path[1:]) or "/"
    subprocess.run(
        ["rabbitmqctl", "close_all_connections", "-p", vhost, "test: connection dropped"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    # No task lost: those held by the old connection come back and run (perhaps twice).
    assert [r.get(timeout=30) for r in first] == [0.3] * 8
    after = [client.send_task("proj.add", (n, 1)) for n in range(10)]
    assert [r.get(timeout=30) for r in after] == [n + 1 for n in range(10)]
    assert worker.proc.poll() is None
    assert "reconnected to RabbitMQ" in worker.output() or "connection lost" in worker.output()


def _started(marker: Path) -> bool:
    """Has the task written its pid? (It creates the file before writing to it.)"""
    return marker.exists() and bool(marker.read_text().strip())
