"""Redis Cluster: three masters started by the test; a worker runs plain, delayed, grouped and
chorded tasks on queues in different slots, remote control goes over the cluster's pub/sub, and
results, chord counters and the beat lock live on whichever node owns their slot."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster

from celeriac import chord
from celeriac import group
from celeriac import signature
from celeriac.plugin import Config
from celeriac.testing import WorkerProcess
from celeriac_redis import RedisConfig
from celeriac_redis import RedisScheduleStore

from .conftest import write_project
from .deployments import ClusterDeployment

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PREFIX = "celeriac-cluster:"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterDeployment]:
    started = ClusterDeployment(tmp_path_factory.mktemp("cluster"))
    try:
        started.start()
        yield started
    finally:
        started.processes.stop()


@pytest.fixture
def cluster_project(tmp_path: Path, cluster: ClusterDeployment) -> Path:
    write_project(tmp_path, cluster.url, PREFIX)
    return tmp_path


@pytest.fixture
def cluster_client(cluster_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.chdir(cluster_project)
    monkeypatch.syspath_prepend(str(cluster_project))
    sys.modules.pop("proj", None)
    import proj

    yield proj.app
    proj.app.close()
    sys.modules.pop("proj", None)


@pytest.fixture
def cluster_worker(cluster_project: Path) -> Iterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = str(cluster_project)
    worker = WorkerProcess.start(
        [sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-c", "4", "-Q", "celery,other"],
        cwd=cluster_project,
        log=cluster_project / "worker.log",
        env=env,
    )
    try:
        worker.wait_ready()
        yield worker
    finally:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGKILL)
            worker.wait(timeout=10)


def _node_ports(cluster: ClusterDeployment, keys: list[str]) -> set[int]:
    client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    try:
        return {client.get_node_from_key(key).port for key in keys}  # type: ignore[no-untyped-call]
    finally:
        client.close()


def test_worker_runs_tasks_delays_groups_and_chords(
    cluster: ClusterDeployment, cluster_client: Any, cluster_worker: WorkerProcess
) -> None:
    # The two queues' keys live on different masters: the worker reads both.
    assert len(_node_ports(cluster, [f"{PREFIX}{{celery}}:0", f"{PREFIX}{{other}}:0"])) == 2
    results = [cluster_client.send_task("proj.add", (n, n)) for n in range(50)]
    others = [cluster_client.send_task("proj.add", (n, 1), queue="other") for n in range(20)]
    delayed = cluster_client.send_task("proj.add", (20, 22), countdown=1.0)
    assert [r.get(timeout=20) for r in results] == [2 * n for n in range(50)]
    assert [r.get(timeout=20) for r in others] == [n + 1 for n in range(20)]
    assert delayed.get(timeout=20) == 42
    # Results of many slots are read together (one MGET per slot).
    parallel = group(signature("proj.add", (i, i), app=cluster_client) for i in range(10)).delay()
    assert parallel.get(timeout=20) == [2 * i for i in range(10)]
    body = signature("proj.total", app=cluster_client)
    header = group(signature("proj.add", (i, 1), app=cluster_client) for i in range(10))
    assert chord(header, body).delay().get(timeout=20) == sum(i + 1 for i in range(10))
    # Remote control: a broadcast over the cluster's pub/sub, replies back the same way.
    replies = cluster_client.control.ping(timeout=2.0)
    assert len(replies) == 1
    assert cluster_client.transport.queue_length("celery") == 0
    assert cluster_worker.proc.poll() is None


def test_beat_lock_on_a_cluster(cluster: ClusterDeployment) -> None:
    config = Config(sections={"redis": RedisConfig(key_prefix=PREFIX)})
    store = RedisScheduleStore(cluster.url, config)
    try:
        assert store.acquire("beat", "one", 10)
        assert not store.acquire("beat", "two", 10)
        assert store.claim("beat", "one", "every-minute", 2.5)
        assert store.claimed_at("every-minute") == 2.5
        store.set_last_run_at("every-minute", 3.0)
        assert store.last_run_at("every-minute") == 3.0
        store.release("beat", "one")
        assert store.acquire("beat", "two", 10)
    finally:
        store.close()
