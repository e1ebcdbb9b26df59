"""Redis deployments a test starts for itself: a master with a replica watched by a Sentinel,
and a three-master Cluster. All on free loopback ports, stopped by PID, every wait bounded."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from celeriac.testing import wait_for

MASTER_NAME = "mymaster"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Redis 7's redis-server and redis-cli are needed)")
    return path


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int, *, bus: bool = False) -> list[int]:
    """``count`` free loopback ports; with ``bus``, each port + 10000 (the cluster bus) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and _bindable(port) and (not bus or _bindable(port + 10000)):
            ports.append(port)
    return ports


def _ok(check: object) -> bool:
    try:
        return bool(check() if callable(check) else check)
    except (redis.RedisError, OSError):
        return False


class Processes:
    """Server processes of one test: each stopped by its PID, never by name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"{name}.log"
        proc = subprocess.Popen(
            [_binary("redis-server"), *args, "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        self.procs[proc.pid] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(timeout=10)  # SIGKILL cannot be ignored
        self.procs.clear()


def server_args(port: int, directory: Path, *extra: str) -> list[str]:
    return [
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
        *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
        *extra,
    ]


class SentinelDeployment:
    """A master, one replica and one Sentinel (quorum 1) that fails over within seconds."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master_port, self.replica_port, self.sentinel_port = free_ports(3)
        self.processes = Processes(directory)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/0?master_name={MASTER_NAME}"

    def start(self) -> None:
        for name, port, extra in (
            ("master", self.master_port, ()),
            ("replica", self.replica_port, ("--replicaof", "127.0.0.1", str(self.master_port))),
        ):
            directory = self.directory / name
            directory.mkdir()
            self.processes.start(name, *server_args(port, directory, *extra))
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        )
        self.processes.start("sentinel", str(config), "--sentinel")
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True)
        replica = redis.Redis(port=self.replica_port, socket_timeout=2, decode_responses=True)
        wait_for(
            lambda: _ok(lambda: replica.info("replication")["master_link_status"] == "up"), 20, "replica sync"
        )
        # A failover needs a replica the Sentinel knows and thinks healthy.
        wait_for(lambda: _ok(lambda: self._replica_known(sentinel)), 30, "Sentinel seeing the replica")
        sentinel.close()
        replica.close()

    def _replica_known(self, sentinel: redis.Redis) -> bool:
        # sentinel_slaves parses the reply into dicts in every redis-py version.
        replicas = sentinel.sentinel_slaves(MASTER_NAME)
        return any(
            int(entry["port"]) == self.replica_port and "s_down" not in entry["flags"] for entry in replicas
        )

    def master_port_now(self) -> int:
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True)
        try:
            _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)  # type: ignore[no-untyped-call]
            return int(port)
        finally:
            sentinel.close()

    def failover(self) -> None:
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=5)
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)  # type: ignore[no-untyped-call]
        finally:
            sentinel.close()


class ClusterDeployment:
    """Three masters with no replicas, slots spread by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = free_ports(3, bus=True)
        self.processes = Processes(directory)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:2])

    def start(self) -> None:
        for port in self.ports:
            directory = self.directory / str(port)
            directory.mkdir()
            self.processes.start(
                f"node-{port}",
                *server_args(
                    port, directory, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"
                ),
            )
        for port in self.ports:
            node = redis.Redis(port=port, socket_timeout=2)
            wait_for(lambda node=node: _ok(node.ping), 10, f"node {port} start")
            node.close()
        subprocess.run(
            [
                _binary("redis-cli"),
                *("--cluster", "create", *[f"127.0.0.1:{port}" for port in self.ports]),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in self.ports:
            node = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            wait_for(lambda node=node: _ok(lambda: _cluster_ok(node)), 20, f"cluster state ok on {port}")
            node.close()


def _cluster_ok(node: redis.Redis) -> bool:
    info = node.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    text = info if isinstance(info, str) else str(info)
    return "cluster_state:ok" in text or "'cluster_state': 'ok'" in text
