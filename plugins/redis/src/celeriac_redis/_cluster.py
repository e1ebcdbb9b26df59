"""The hot-path command layer on Redis Cluster: one :class:`Direct` per master, chosen by key slot.

Every command the plugin sends on the hot path names its keys, and all keys of one command
share a hash tag (``{<queue>}``), so each goes to the master serving that slot over that
node's own direct connections. A reply saying the slot moved (``MOVED``, ``ASK``,
``CLUSTERDOWN``, ``TRYAGAIN``) or a node that cannot be reached makes redis-py's
``RedisCluster`` read the slot map again, and the command is sent again with back-off.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar
from typing import final

from celeriac_redis._client import Direct
from celeriac_redis._client import Lua
from celeriac_redis._config import RedisConfig

if TYPE_CHECKING:
    import redis
    from redis.cluster import ClusterNode
    from redis.cluster import RedisCluster

T = TypeVar("T")


@final
class ClusterDirect:
    """Routes each command to its key's master; the topology comes from ``RedisCluster``."""

    def __init__(self, client: redis.Redis, settings: RedisConfig, **overrides: Any) -> None:
        from redis.cluster import RedisCluster as RedisClusterClass
        from redis.exceptions import AskError
        from redis.exceptions import ClusterDownError
        from redis.exceptions import MovedError
        from redis.exceptions import TryAgainError

        cluster: object = client  # typed as redis.Redis by make_client
        if not isinstance(cluster, RedisClusterClass):
            raise TypeError(f"{client!r} is not a RedisCluster")
        self._cluster: RedisCluster = cluster
        self._settings = settings
        self._overrides = overrides
        self._nodes: dict[str, Direct] = {}
        self._lock = threading.Lock()
        self.attempts = settings.retry_attempts
        self.retryable: tuple[type[BaseException], ...] = _retryable()
        self._again: tuple[type[BaseException], ...] = (
            MovedError,
            AskError,
            ClusterDownError,
            TryAgainError,
            *self.retryable,
        )

    def _slot(self, key: str | bytes) -> int:
        slot: int = self._cluster.keyslot(key)  # type: ignore[no-untyped-call]
        return slot

    def node(self, key: str | bytes) -> Direct:
        """The direct connections of the master that serves ``key`` now."""
        node: ClusterNode = self._cluster.nodes_manager.get_node_from_slot(self._slot(key))
        direct = self._nodes.get(node.name)
        if direct is None:
            with self._lock:
                direct = self._nodes.get(node.name)
                if direct is None:
                    connection = self._cluster.get_redis_connection(node)
                    direct = self._nodes[node.name] = Direct(connection, self._settings, **self._overrides)
        return direct

    def _routed(self, key: str | bytes, send: Callable[[Direct], T]) -> T:
        failures = 0
        while True:
            try:
                return send(self.node(key))
            except self._again:
                failures += 1
                if failures > self.attempts:
                    raise
                self._refresh()
                self.backoff(failures)

    def _refresh(self) -> None:
        """Read the slot map again (after a failover or resharding)."""
        with contextlib.suppress(*self.retryable):  # the next attempt tries again
            self._cluster.nodes_manager.initialize()

    # --- the interface of Direct ------------------------------------------------------------

    def call(self, *args: Any) -> Any:
        """A command whose first argument is its key (GET, DEL, XADD ...)."""
        return self._routed(args[1], lambda direct: direct.call(*args))

    def mget(self, keys: Sequence[str]) -> list[Any]:
        """MGET per slot (a cluster refuses keys of several slots in one), in the order of ``keys``."""
        by_slot: dict[int, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            by_slot[self._slot(key)].append(index)
        values: list[Any] = [None] * len(keys)
        for indexes in by_slot.values():
            chunk = [keys[i] for i in indexes]
            for i, value in zip(indexes, self._mget_slot(chunk), strict=True):
                values[i] = value
        return values

    def _mget_slot(self, keys: Sequence[str]) -> list[Any]:
        return self._routed(keys[0], lambda direct: direct.mget(keys))

    def run(self, script: Lua, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self._routed(keys[0], lambda direct: direct.run(script, keys, args))

    def run_many(self, runs: Sequence[tuple[Lua, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        return [self.run(*run) for run in runs]

    def backoff(self, failures: int) -> None:
        time.sleep(min(self._settings.retry_backoff_base * 2**failures, self._settings.retry_backoff_max))

    def close(self) -> None:
        with self._lock:
            nodes, self._nodes = list(self._nodes.values()), {}
        for direct in nodes:
            direct.close()


def _retryable() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError, OSError)
