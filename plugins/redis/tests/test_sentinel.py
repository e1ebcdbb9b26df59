"""Redis behind Sentinel: a real master, replica and Sentinel started by the test, and a failover
while a worker runs tasks. Every task must finish and every message be acknowledged."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from celeriac.plugin import Config
from celeriac.plugin import ResultRecord
from celeriac.testing import WorkerProcess
from celeriac.testing import wait_for
from celeriac_redis import RedisConfig
from celeriac_redis import RedisResultStore
from celeriac_redis import RedisScheduleStore
from celeriac_redis import _client

from .conftest import write_project
from .deployments import MASTER_NAME
from .deployments import SentinelDeployment

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[SentinelDeployment]:
    directory = tmp_path / "sentinel"
    directory.mkdir()
    started = SentinelDeployment(directory)
    try:
        started.start()
        yield started
    finally:
        started.processes.stop()


@pytest.fixture
def sentinel_project(tmp_path: Path, deployment: SentinelDeployment) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, deployment.url, "celeriac-sentinel:")
    return project


@pytest.fixture
def sentinel_client(sentinel_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.chdir(sentinel_project)
    monkeypatch.syspath_prepend(str(sentinel_project))
    sys.modules.pop("proj", None)
    import proj

    yield proj.app
    proj.app.close()
    sys.modules.pop("proj", None)


@pytest.fixture
def sentinel_worker(sentinel_project: Path) -> Iterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = str(sentinel_project)
    worker = WorkerProcess.start(
        [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "4"],
        cwd=sentinel_project,
        log=sentinel_project / "worker.log",
        env=env,
    )
    try:
        worker.wait_ready()
        yield worker
    finally:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGKILL)
            worker.wait(timeout=10)


def _pending(port: int, prefix: str) -> int:
    """Entries delivered but not acknowledged, over every band stream of the queue ``celery``."""
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        total = 0
        for key in client.scan_iter(match=f"{prefix}{{celery}}:[0-9]"):
            for group in client.xinfo_groups(key):
                total += int(group["pending"])
        return total
    finally:
        client.close()


def test_worker_keeps_going_through_a_failover(
    deployment: SentinelDeployment, sentinel_client: Any, sentinel_worker: WorkerProcess
) -> None:
    assert [sentinel_client.send_task("proj.add", (n, n)).get(timeout=20) for n in range(5)] == [
        0,
        2,
        4,
        6,
        8,
    ]
    before = deployment.master_port_now()
    assert before == deployment.master_port
    in_flight = [sentinel_client.send_task("proj.slow", (0.02,)) for _ in range(200)]
    # Make sure the replica has every published task before the switch: Sentinel's failover
    # does not wait for replication, so writes of the last instant could go with the old master.
    master = redis.Redis(port=deployment.master_port, socket_timeout=5)
    master.set("celeriac-sentinel:fence", "1")
    assert master.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
    master.close()
    deployment.failover()
    wait_for(lambda: deployment.master_port_now() == deployment.replica_port, 20, "failover")
    # Connections hear of the new master from the Sentinels' +switch-master channel; the
    # tasks sent right after the switch must all run on the new master.
    time.sleep(0.3)
    after = [sentinel_client.send_task("proj.add", (n, 1)) for n in range(50)]
    assert [result.get(timeout=60) for result in in_flight] == [0.02] * 200
    assert [result.get(timeout=60) for result in after] == [n + 1 for n in range(50)]
    assert sentinel_worker.proc.poll() is None
    # Every message was acknowledged on the new master: none is left pending for redelivery.
    wait_for(lambda: _pending(deployment.replica_port, "celeriac-sentinel:") == 0, 20, "no pending entries")
    assert sentinel_client.transport.queue_length("celery") == 0


def test_beat_lock_through_sentinel_with_kombus_url(deployment: SentinelDeployment) -> None:
    """Celery's spelling: ``sentinel://`` nodes joined by ``;``, the master named in the config."""
    settings = RedisConfig(key_prefix="celeriac-sentinel:", master_name=MASTER_NAME)
    url = f"sentinel://127.0.0.1:{deployment.sentinel_port}/0;sentinel://127.0.0.1:{deployment.sentinel_port}"
    store = RedisScheduleStore(url, Config(sections={"redis": settings}))
    try:
        assert store.acquire("beat", "one", 10)
        assert not store.acquire("beat", "two", 10)
        assert store.claim("beat", "one", "every-minute", 1.5)
        assert store.claimed_at("every-minute") == 1.5
        store.release("beat", "one")
        assert store.acquire("beat", "two", 10)
    finally:
        store.close()


def _results(deployment: SentinelDeployment, prefix: str) -> RedisResultStore:
    settings = RedisConfig(key_prefix=prefix, result_key_prefix=prefix)
    return RedisResultStore(deployment.url, Config(sections={"redis": settings}))


def _success(task_id: str) -> ResultRecord:
    return ResultRecord(
        task_id=task_id, state="SUCCESS", payload=b'{"status": "SUCCESS"}', content_type="application/json"
    )


def _exists_on(port: int, key: str) -> bool:
    server = redis.Redis(port=port)
    try:
        return bool(server.exists(key))
    finally:
        server.close()


def test_results_and_queues_live_on_the_master_sentinel_names(deployment: SentinelDeployment) -> None:
    """Every command goes to the master the Sentinels name, the hot path's own connections
    included (an unconnected one would otherwise go to the default 127.0.0.1:6379)."""
    store = _results(deployment, "sentinel-where:")
    try:
        store.store(_success("t1"))
        assert store.get("t1") is not None
        assert store.wait("t1", frozenset({"SUCCESS"}), 2) is not None
    finally:
        store.close()
    assert _exists_on(deployment.master_port, "sentinel-where:celery-task-meta-t1")


def test_a_failover_is_heard_at_once(deployment: SentinelDeployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write made right after the switch goes to the new master. The once-a-second check is
    pushed out of the way, so only the +switch-master announcement can have told the store
    (before it, such a write went to the demoted master and was lost when it resynced)."""
    monkeypatch.setattr(_client, "_MASTER_CHECK_INTERVAL", 60.0)
    store = _results(deployment, "sentinel-heard:")
    try:
        store.store(_success("before"))
        time.sleep(0.3)  # the listener subscribes
        deployment.failover()
        wait_for(lambda: deployment.master_port_now() == deployment.replica_port, 20, "failover")
        time.sleep(0.3)
        store.store(_success("after"))
    finally:
        store.close()
    assert _exists_on(deployment.replica_port, "sentinel-heard:celery-task-meta-after")
