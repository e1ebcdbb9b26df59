"""What users rely on a task to do, checked with real workers on every broker they can choose.

Each test runs on SQLite, Redis (streams and kombu layouts) and RabbitMQ (see ``brokers.py``
for how each gets a namespace of its own). Tasks report through files in the project
directory, so the same assertions hold for in-thread workers and worker processes.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import MaxRetriesExceededError
from celeriac import states
from celeriac.plugin import DeadLetterPurger
from celeriac.plugin import Envelope
from celeriac.testing import WorkerProcess
from celeriac.testing import celeriac_command
from celeriac.testing import join
from celeriac.testing import process_group
from celeriac.testing import project_app
from celeriac.testing import wait_for
from celeriac.testing import worker_thread
from celeriac_amqp import testing as amqp_testing
from celeriac_redis import testing as redis_testing

from . import brokers
from .brokers import BROKERS
from .brokers import VISIBILITY_TIMEOUT
from .brokers import BrokerCase
from .brokers import lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

#: One worker slot and one reserved message: what a queued task waits behind is then known.
ONE_AT_A_TIME: dict[str, Any] = {"concurrency": 1, "prefetch": 1}


@pytest.fixture(scope="module")
def redis_url() -> str:
    return redis_testing.require_redis(brokers.REDIS_URL)


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """``AMQP_URL`` on a vhost of this module's own when ``rabbitmqctl`` can make one."""
    with amqp_testing.private_vhost(brokers.AMQP_URL, prefix="celeriac-semantics") as url:
        yield url


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[BrokerCase]:
    """Each broker a user can choose, on a namespace of this test's own."""
    name: str = request.param
    server = {"redis": "redis_url", "redis-kombu": "redis_url", "amqp": "amqp_url"}.get(name)
    with brokers.broker_case(name, request.getfixturevalue(server) if server else None) as case:
        yield case


@pytest.fixture
def project(broker: BrokerCase, tmp_path: Path) -> Path:
    brokers.write_project(tmp_path, broker)
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[Any]:
    """The project's app, imported here: it sends tasks and runs the in-thread workers."""
    with project_app(project, "semtasks") as app:
        yield app


@pytest.fixture
def start_worker(project: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``celeriac worker`` processes in the project; each is killed by its PID afterwards."""
    with process_group(project) as processes:
        yield lambda *args: processes.start(celeriac_command("semtasks", "worker", *args))


def reason_of(result: Any) -> str:
    """The reason a REVOKED result was stored with (``revoked``, ``expired at ...``)."""
    return str(result.result)


def hold_until_released(client: Any, project: Path) -> tuple[Any, Path]:
    """Send a task that occupies its worker until the returned file is created; wait for it to start."""
    started, release = project / "hold-started.txt", project / "release"
    held = client.send_task("semtasks.hold", (str(started), str(release)))
    wait_for(started.exists, 10, "the holding task started")
    return held, release


# --- 1 retries -----------------------------------------------------------------------------


def test_retry_runs_again_until_success_and_autoretry_gives_up(
    client: Any, project: Path, broker: BrokerCase
) -> None:
    retried, failing = project / "flaky.txt", project / "down.txt"
    with worker_thread(client, concurrency=2, prefetch=1):
        flaky = client.send_task("semtasks.flaky", (str(retried), 2))
        down = client.send_task("semtasks.always_down", (str(failing),))
        assert flaky.get(timeout=15) == 2
        with pytest.raises(MaxRetriesExceededError, match="gave up after 2 retries"):
            down.get(timeout=15)
    assert lines(retried) == ["0", "1", "2"]  # request.retries as each run saw it
    assert flaky.state == states.SUCCESS
    assert down.state == states.FAILURE
    assert lines(failing) == ["attempt"] * 3  # the first run and max_retries = 2 retries


# --- 2 countdown ---------------------------------------------------------------------------


def test_countdown_task_does_not_start_early_and_runs(client: Any, project: Path, broker: BrokerCase) -> None:
    # Two seconds, and delays within the worker's one-second ETA tolerance: none may run early.
    ran = project / "ran.txt"
    countdowns = {"2": 2.0, "1": 1.0, "0.4": 0.4}
    with worker_thread(client, concurrency=3, prefetch=1):
        sent, results = {}, []
        for label, countdown in countdowns.items():
            sent[label] = time.time()
            results.append(client.send_task("semtasks.record", (str(ran), label), countdown=countdown))
        assert [result.get(timeout=10) for result in results] == list(countdowns)
    for line in lines(ran):
        label, started, _ = line.split()
        waited = float(started) - sent[label]
        assert waited >= countdowns[label] - 0.05, f"countdown={label} started after {waited:.3f} s"


# --- 3 expires -----------------------------------------------------------------------------


def test_expired_task_is_not_run_and_is_revoked_with_the_reason(
    client: Any, project: Path, broker: BrokerCase
) -> None:
    ran = project / "ran.txt"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    expired = client.send_task("semtasks.record", (str(ran), "expired"), expires=past)
    with worker_thread(client, **ONE_AT_A_TIME):
        _, release = hold_until_released(client, project)
        # The worker holds the running task and one reserved message (the filler): the next
        # one waits in the broker, where it expires.
        filler = client.send_task("semtasks.record", (str(ran), "filler"))
        soon = client.send_task("semtasks.record", (str(ran), "soon"), expires=0.5)
        time.sleep(0.8)
        release.touch()
        after = client.send_task("semtasks.record", (str(ran), "after"))
        assert filler.get(timeout=10) == "filler"
        assert after.get(timeout=10) == "after"
        wait_for(lambda: soon.state != states.PENDING, 5, "a state for the task that expired queued")
    assert [line.split()[0] for line in lines(ran)] == ["filler", "after"]
    for result in (expired, soon):
        assert result.state == states.REVOKED
        assert "expired at" in reason_of(result)


# --- 4 revocation --------------------------------------------------------------------------


def revoked_by_workers(client: Any) -> set[str]:
    """The ids every worker that answered holds as revoked (the ``revoked`` command)."""
    replies = client.control.broadcast("revoked", {}, reply=True, timeout=1, limit=1)
    return {task_id for reply in replies for ids in reply.values() for task_id in ids}


def test_revoked_queued_task_never_runs(client: Any, project: Path, broker: BrokerCase) -> None:
    ran = project / "ran.txt"
    with worker_thread(client, **ONE_AT_A_TIME):
        held, release = hold_until_released(client, project)
        victim = client.send_task("semtasks.record", (str(ran), "victim"))
        client.control.revoke(victim.id)
        after = client.send_task("semtasks.record", (str(ran), "after"))
        # The revoke is a broadcast: wait until the busy worker has it.
        wait_for(lambda: victim.id in revoked_by_workers(client), 10, "the revoke received")
        release.touch()
        assert held.get(timeout=10) == os.getpid()
        assert after.get(timeout=10) == "after"
    assert [line.split()[0] for line in lines(ran)] == ["after"]
    assert victim.state == states.REVOKED
    assert reason_of(victim).endswith("revoked")


# --- 5 priorities --------------------------------------------------------------------------


def test_waiting_tasks_run_in_priority_order(client: Any, project: Path, broker: BrokerCase) -> None:
    # Every broker serves one priority first and keeps FIFO within a priority; which one is
    # first is the transport's documented order (kombu's lower-first on the kombu layout).
    order = project / "order.txt"
    first, later = broker.served_first, 9 - broker.served_first
    for n in range(10):
        client.send_task("semtasks.record", (str(order), f"later-{n}"), priority=later)
    for n in range(10):
        client.send_task("semtasks.record", (str(order), f"first-{n}"), priority=first)
    client.flush()  # all 20 queued (confirmed, on RabbitMQ) before the worker takes the first
    with worker_thread(client, **ONE_AT_A_TIME):
        wait_for(lambda: len(lines(order)) == 20, 15, "all 20 tasks ran")
    labels = [line.split()[0] for line in lines(order)]
    assert labels == [f"first-{n}" for n in range(10)] + [f"later-{n}" for n in range(10)]


# --- 6 routing -----------------------------------------------------------------------------


def test_routed_task_is_consumed_only_from_its_queue(client: Any, project: Path, broker: BrokerCase) -> None:
    ran = project / "ran.txt"
    routed = client.send_task("semtasks.routed_report", (str(ran),))
    with worker_thread(client, **ONE_AT_A_TIME) as worker:
        assert client.send_task("semtasks.add", (1, 2)).get(timeout=10) == 3
        join(worker)  # a fetch round over: had it consumed q2, it would hold the message
        assert routed.state == states.PENDING
    assert lines(ran) == []
    assert client.transport.queue_length("q2") == 1
    with worker_thread(client, queues=("q2",), **ONE_AT_A_TIME):
        assert routed.get(timeout=10) == "routed"
    assert lines(ran) == ["ran"]


# --- 7 acknowledgement ---------------------------------------------------------------------


def test_killed_worker_late_ack_task_runs_again_early_ack_task_does_not(
    client: Any, project: Path, broker: BrokerCase, start_worker: Callable[..., WorkerProcess]
) -> None:
    late_started, early_started, release = (
        project / "late.txt",
        project / "early.txt",
        project / "release",
    )
    first = start_worker("-c", "2", "--prefetch", "1")
    late = client.send_task("semtasks.hold", (str(late_started), str(release)))
    early = client.send_task("semtasks.hold_early_ack", (str(early_started), str(release)))
    # The files' lines, not their existence: a task creates its file before writing to it.
    wait_for(lambda: bool(lines(late_started) and lines(early_started)), 10, "both tasks started")
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.monotonic()
    release.touch()
    with worker_thread(client, concurrency=2, prefetch=1):
        # Late ack (the default): the message comes back, after the lease on SQLite and
        # Redis, at once on RabbitMQ (the connection closed).
        assert late.get(timeout=VISIBILITY_TIMEOUT + 10) == os.getpid()
        # Early ack is the at-most-once choice: acknowledged when it started, so nothing
        # comes back. It would have come back with the late one; wait a lease more anyway.
        time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 1.0 - time.monotonic()))
    assert lines(late_started) == [str(first.pid), str(os.getpid())]
    assert lines(early_started) == [str(first.pid)]
    assert early.state == states.PENDING


# --- 8 malformed messages ------------------------------------------------------------------


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(
    client: Any, project: Path, broker: BrokerCase
) -> None:
    queue = broker.default_queue
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": "semtasks.add", "id": task_id, "root_id": task_id}
    client.transport.publish(
        queue, [Envelope(body=b"\xff{not json", content_type="application/json", headers=headers)]
    )
    client.transport.publish(queue, [Envelope(body=b"garbage", content_type="application/x-garbage")])
    with worker_thread(client, **ONE_AT_A_TIME):
        assert client.send_task("semtasks.add", (2, 3)).get(timeout=10) == 5
        wait_for(lambda: len(client.transport.dead_letters(queue)) == 2, 5, "two dead letters")
    letters = client.transport.dead_letters(queue)
    by_body = {bytes(letter.envelope.body): letter.reason for letter in letters}
    assert set(by_body) == {b"\xff{not json", b"garbage"}
    assert "cannot decode" in by_body[b"\xff{not json"]
    assert "cannot decode" in by_body[b"garbage"]
    assert client.AsyncResult(task_id).state == states.FAILURE
    # Purged for good: the capability every bundled transport has.
    assert isinstance(client.transport, DeadLetterPurger)
    assert client.transport.purge_dead_letters(queue) == 2
    assert client.transport.dead_letters(queue) == []


def test_foreign_garbage_on_the_wire_is_dead_lettered_and_the_worker_goes_on(
    client: Any, project: Path, broker: BrokerCase
) -> None:
    """Bytes another program put on a queue, without any of the transport's framing."""
    if broker.name == "sqlite":
        pytest.skip("only celeriac writes the SQLite broker's rows; nothing foreign can arrive")
    queue = broker.default_queue
    client.transport.declare_queue(queue)
    brokers.publish_raw_garbage(broker, queue)
    with worker_thread(client, **ONE_AT_A_TIME):
        assert client.send_task("semtasks.add", (2, 3)).get(timeout=10) == 5
        wait_for(lambda: len(client.transport.dead_letters(queue)) == 2, 5, "two dead letters")
    reasons = [letter.reason for letter in client.transport.dead_letters(queue)]
    assert all(reasons), reasons
    assert client.transport.queue_length(queue) == 0
