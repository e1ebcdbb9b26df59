"""Building redis-py clients from a URL and the ``[redis]`` section; redis is imported here only."""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import cast
from typing import final
from urllib.parse import urlsplit

from attrs import field
from attrs import frozen

from celeriac.plugin import ConfigError
from celeriac.plugin import PublishTimeoutError
from celeriac.plugin import after_fork
from celeriac.plugin import redact_url
from celeriac_redis._config import RedisConfig
from celeriac_redis._switches import SwitchWatcher
from celeriac_redis._urls import Target
from celeriac_redis._urls import parse

if TYPE_CHECKING:
    import redis
    from redis.client import Pipeline
    from redis.client import PubSub

    from celeriac_redis._cluster import ClusterDirect


def make_client(url: str, settings: RedisConfig) -> redis.Redis:
    """A client with its own connection pool, retrying commands after connection errors.

    Every command that fails on a broken connection is retried on a fresh one with an
    exponential back-off, so a Redis restart or failover shorter than the retry budget is
    invisible to callers; after that the error reaches them. A Sentinel URL gives a client
    whose every new connection asks the Sentinels for the current master; a Cluster URL
    gives redis-py's ``RedisCluster`` (typed as ``redis.Redis``: it offers the part of that
    API the plugin uses; :func:`is_cluster` tells them apart).

    :param url: any form :mod:`celeriac_redis._urls` accepts.
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    target = parse(url, settings.master_name)
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_keepalive": settings.socket_keepalive,
        "health_check_interval": settings.health_check_interval,
        "max_connections": settings.max_connections,
        "client_name": settings.client_name,
        "retry": Retry(
            ExponentialBackoff(cap=settings.retry_backoff_max, base=settings.retry_backoff_base),
            settings.retry_attempts,
        ),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError],
    }
    if target.tls or urlsplit(url).scheme.lower() == "rediss":
        options.update(
            ssl_cert_reqs=settings.ssl_cert_reqs,
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
            ssl_check_hostname=settings.ssl_check_hostname,
        )
    if target.kind == "sentinel":
        return _sentinel_master(target, settings, options)
    if target.kind == "cluster":
        return _cluster(target, settings, options)
    try:
        return redis.Redis.from_url(target.url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {url!r}: {exc}") from exc


def _sentinel_master(target: Target, settings: RedisConfig, options: dict[str, Any]) -> redis.Redis:
    from redis.sentinel import Sentinel

    sentinel_options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_keepalive": settings.socket_keepalive,
    }
    if settings.sentinel_password is not None:
        sentinel_options["password"] = settings.sentinel_password
    if target.tls:
        options["ssl"] = True
    if target.master_name is None:  # parse_url refuses a Sentinel URL without one; this narrows the type
        raise ConfigError(f"no master_name for the Sentinel nodes {list(target.nodes)}")
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_options)
    master: redis.Redis = sentinel.master_for(
        target.master_name,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )
    return master


def _cluster(target: Target, settings: RedisConfig, options: dict[str, Any]) -> redis.Redis:
    from redis.cluster import ClusterNode
    from redis.cluster import RedisCluster

    if settings.layout == "kombu":
        raise ConfigError(
            "[redis] layout = 'kombu' cannot run on Redis Cluster: kombu's keys (one list per "
            "queue, the shared 'unacked' hash and index) carry no hash tags, so its scripts would "
            "cross slots. Use the streams layout on a cluster, or a single Redis or Sentinel for kombu"
        )
    options.pop("max_connections")  # RedisCluster caps per node itself; None is not accepted
    if target.tls:
        options["ssl"] = True
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],  # type: ignore[no-untyped-call]
        username=target.username,
        password=target.password,
        **options,
    )
    # RedisCluster answers the calls the plugin makes on a client (scripts, sets, hashes,
    # pipelines without transactions, pub/sub) with the signatures of redis.Redis.
    return cast("redis.Redis", cluster)


def is_cluster(client: redis.Redis) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def database(client: redis.Redis) -> int:
    """The database number ``client`` talks to (0 on a cluster, which has no other).

    Pub/sub ignores databases: every channel is server-wide, so channel names carry it.
    """
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    return int(kwargs.get("db") or 0)


log = logging.getLogger("celeriac.redis")

#: Seconds between two questions to the Sentinels about which server is the master.
_MASTER_CHECK_INTERVAL = 1.0


def make_direct(client: redis.Redis, settings: RedisConfig, **overrides: Any) -> Direct | ClusterDirect:
    """The hot-path command layer for ``client``: one server's, or one per cluster node."""
    if is_cluster(client):
        from celeriac_redis._cluster import ClusterDirect

        return ClusterDirect(client, settings, **overrides)
    return Direct(client, settings, **overrides)


def publish_timeout_error(url: str, timeout: float, exc: BaseException) -> PublishTimeoutError:
    """The error a publish raises when Redis stayed unreachable for ``publish_timeout``."""
    return PublishTimeoutError(
        f"could not publish to the broker {redact_url(url)} within publish_timeout ({timeout:g} s): "
        f"{type(exc).__name__}: {exc}; the message was not sent"
    )


def block_ms(timeout: float, settings: RedisConfig) -> int:
    """Milliseconds a blocking command may wait: within ``timeout`` and under the socket timeout."""
    ceiling = max(settings.socket_timeout - 1.0, 0.1)
    return max(int(min(timeout, ceiling) * 1000), 1)


# Every raw command and pub/sub goes through these two, so that the rest of the plugin stays
# checked whatever redis-py annotates in the version installed.
def command(client: redis.Redis | Pipeline | PubSub, *args: Any) -> Any:
    """``client.execute_command(*args)``: the raw command, for hot paths and replies we parse."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def pubsub(client: redis.Redis) -> PubSub:
    created: PubSub = client.pubsub()
    return created


class Connection(Protocol):
    """What the plugin uses of a redis-py connection (redis-py leaves these unannotated)."""

    def pack_command(self, *args: Any) -> Any: ...

    def pack_commands(self, commands: Sequence[Sequence[Any]]) -> Any: ...

    def send_packed_command(self, command: Any, check_health: bool = True) -> None: ...

    def read_response(self, disable_decoding: bool = False, *, push_request: bool = False) -> Any: ...

    def can_read(self, timeout: float = 0) -> bool: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...


@frozen
class Lua:
    """A Lua script and its SHA1, computed here: run with EVALSHA, loaded on NOSCRIPT."""

    source: str
    sha: str = field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


@final
class Direct:
    """Hot-path commands on a free list of connections, straight to the socket and back.

    redis-py's ``execute_command`` takes a connection from its pool under a lock, wraps the
    call in its retry helper, runs response callbacks and its observability hooks: about
    15-30 µs of Python per command on a 2-core machine, for a command whose round trip on
    loopback is about 25 µs. The hot path (publish, fetch, acknowledge, store and read
    results) takes a connection from a plain list instead (``pop``/``append`` are atomic),
    sends the packed command and returns the reply as the parser gives it (no callbacks).

    The connections are redis-py's own, built from the client's pool settings (URL, TLS,
    credentials, timeouts, client name, health checks). A command that fails on a broken
    connection is sent again on a fresh one with the client's back-off, as the client does.
    ``max_connections`` caps this list too: a caller then waits for a free connection.
    """

    def __init__(self, client: redis.Redis, settings: RedisConfig, **overrides: Any) -> None:
        import redis as redis_module
        from redis.backoff import ExponentialBackoff
        from redis.backoff import NoBackoff
        from redis.exceptions import NoScriptError
        from redis.retry import Retry

        pool = client.connection_pool
        # This class retries a failed command itself, within its budget or a caller's deadline:
        # a connection must not also retry its connect() (retries within retries: minutes).
        self._kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0), **overrides}
        self._connection_class = _kernel_timed(pool.connection_class, self._kwargs)
        self._idle: list[Connection] = []
        self.attempts = settings.retry_attempts
        self._backoff = ExponentialBackoff(cap=settings.retry_backoff_max, base=settings.retry_backoff_base)
        self._max_connections = settings.max_connections or 0
        self._slots = threading.BoundedSemaphore(self._max_connections) if self._max_connections else None
        self._slot_timeout = settings.socket_timeout + settings.socket_connect_timeout
        self.retryable: tuple[type[BaseException], ...] = (
            redis_module.ConnectionError,
            redis_module.TimeoutError,
            OSError,
        )
        self._no_script = NoScriptError
        self._lock = threading.Lock()
        #: Every connection made and still referenced (idle, in use, or a subscriber's):
        #: what close() disconnects. One dropped after an error goes with the garbage.
        self._created: weakref.WeakSet[Any] = weakref.WeakSet()
        #: Behind Sentinel: the pool that knows the master, and when it was last asked.
        self._sentinel_pool: Any = (
            self._kwargs.get("connection_pool")
            if hasattr(self._kwargs.get("connection_pool"), "get_master_address")
            else None
        )
        self._master: tuple[str, int] | None = None
        self._master_checked = 0.0
        #: Behind Sentinel: told of a failover as it happens, rather than within the second.
        self._switches = (
            SwitchWatcher(self._sentinel_pool, self._switched) if self._sentinel_pool is not None else None
        )
        # A forked child must not use the parent's sockets: it drops them and connects anew.
        after_fork(self, Direct._forget)

    # --- connections ------------------------------------------------------------------------

    def take(self) -> Connection:
        """A connection for this caller alone, until :meth:`give` returns it."""
        if self._slots is not None and not self._slots.acquire(timeout=self._slot_timeout):
            raise TimeoutError(f"no free Redis connection in {self._slot_timeout:.0f} s (max_connections)")
        if self._switches is not None:
            self._switches.start()
        try:
            connection = self._idle.pop()
        except IndexError:
            return self._new()
        if self._sentinel_pool is not None:
            self._follow_master(connection)
        return connection

    def _switched(self, master: tuple[str, int]) -> None:
        """The Sentinels announced a new master: connections taken from now on go there."""
        self._master, self._master_checked = master, time.monotonic()

    def _follow_master(self, connection: Any) -> None:
        """Behind Sentinel, drop a connection to a server that is no longer the master.

        A connection asks the Sentinels for the master only when it connects; one made before
        a failover would keep writing to the old master until that is turned into a replica
        (seconds later), and what it wrote would be lost. So the Sentinels are asked again at
        most once a second, and a connection to another address reconnects.
        """
        now = time.monotonic()
        if now - self._master_checked >= _MASTER_CHECK_INTERVAL:
            self._master_checked = now
            try:
                host, port = self._sentinel_pool.get_master_address()
                self._master = (host, int(port))
            except Exception:  # Sentinels unreachable: keep the connection; commands will tell
                log.warning("could not ask the Sentinels for the master; keeping the connection")
        master = self._master
        if master is not None and (connection.host, int(connection.port)) != master:
            # A no-op on a connection not connected yet; ready() connects it to the master the
            # Sentinels name.
            connection.disconnect()

    def give(self, connection: Connection) -> None:
        self._idle.append(connection)
        if self._slots is not None:
            self._slots.release()

    @staticmethod
    def ready(connection: Connection) -> Connection:
        """Connect a new connection through its own ``connect()``: a Sentinel-managed one asks
        the Sentinels where the master is there, while a command sent on an unconnected one
        would connect to the default address (127.0.0.1:6379) instead. ``connect()`` returns at
        once when the connection is connected (redis-py checks its socket first)."""
        connection.connect()
        return connection

    def new_connection(self) -> Connection:
        """A connection outside the free list (for a subscriber); :meth:`close` closes it too."""
        return self._new()

    def _new(self) -> Connection:
        connection: Connection = self._connection_class(**self._kwargs)
        with self._lock:
            self._created.add(connection)
        return connection

    def _forget(self) -> None:
        self._idle = []
        self._created = weakref.WeakSet()
        self._lock = threading.Lock()
        if self._switches is not None:
            self._switches.forget()
        if self._slots is not None:
            self._slots = threading.BoundedSemaphore(self._max_connections)

    def backoff(self, failures: int) -> None:
        time.sleep(self._backoff.compute(failures))

    def _pause(self, failures: int, deadline: float | None) -> None:
        """The back-off after ``failures``, cut short at ``deadline`` (then one last attempt)."""
        pause = self._backoff.compute(failures)
        if deadline is not None:
            pause = min(pause, max(deadline - time.monotonic(), 0.0))
        time.sleep(pause)

    def close(self) -> None:
        if self._switches is not None:
            self._switches.stop()
        with self._lock:
            created, self._created = list(self._created), weakref.WeakSet()
        self._idle = []
        for connection in created:
            connection.disconnect()

    # --- commands ---------------------------------------------------------------------------

    def node(self, key: str) -> Direct:
        """The command layer serving ``key``: this one (a cluster has one per node)."""
        return self

    def mget(self, keys: Sequence[str]) -> list[Any]:
        """MGET: values in the order of ``keys``."""
        values: list[Any] = self.call("MGET", *keys)
        return values

    def pack(self, *args: Any) -> Any:
        """A command packed once, to send many times with :meth:`call_packed`."""
        connection = self.take()
        try:
            return connection.pack_command(*args)
        finally:
            self.give(connection)

    def call(self, *args: Any, deadline: float | None = None) -> Any:
        """One command; its raw reply. A Redis error reply is raised as redis-py's exception.

        :param deadline: ``time.monotonic()`` until which a connection error is retried,
            instead of ``retry_attempts`` times.
        """
        return self.call_packed(None, args, deadline=deadline)

    def call_packed(self, packed: Any, args: Sequence[Any] = (), *, deadline: float | None = None) -> Any:
        """A command packed by :meth:`pack` (or ``args``, packed here); its raw reply."""
        failures = 0
        while True:
            connection = self.take()
            try:
                if packed is None:
                    packed = connection.pack_command(*args)
                self.ready(connection).send_packed_command(packed)
                return connection.read_response()
            except self.retryable:
                connection.disconnect()  # sent again on a fresh connection, or raised
                failures += 1
                if deadline is None and failures > self.attempts:
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            finally:
                self.give(connection)
            self._pause(failures, deadline)

    def calls(self, commands: Sequence[Sequence[Any]], *, deadline: float | None = None) -> list[Any]:
        """Several commands in one round trip; a Redis error reply is returned in its place."""
        if not commands:
            return []
        failures = 0
        while True:
            connection = self.take()
            try:
                self.ready(connection).send_packed_command(connection.pack_commands(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(connection.read_response())
                    except self.retryable:
                        raise
                    except Exception as exc:  # an error reply: the connection is still in step
                        replies.append(exc)
                return replies
            except self.retryable:
                connection.disconnect()
                failures += 1
                if deadline is None and failures > self.attempts:
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            finally:
                self.give(connection)
            self._pause(failures, deadline)

    def run(
        self, script: Lua, keys: Sequence[Any], args: Sequence[Any], *, deadline: float | None = None
    ) -> Any:
        """EVALSHA, loading the script first when the server does not know it (a restart)."""
        try:
            return self.call("EVALSHA", script.sha, len(keys), *keys, *args, deadline=deadline)
        except self._no_script:
            self.call("SCRIPT", "LOAD", script.source, deadline=deadline)
            return self.call("EVALSHA", script.sha, len(keys), *keys, *args, deadline=deadline)

    def run_many(self, runs: Sequence[tuple[Lua, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Several script runs in one round trip; Redis errors are raised after all have run."""
        commands = [("EVALSHA", lua.sha, len(keys), *keys, *args) for lua, keys, args in runs]
        replies = self.calls(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, self._no_script)]
        if missing:
            for source in {runs[i][0].source for i in missing}:
                self.call("SCRIPT", "LOAD", source)
            for i, reply in zip(missing, self.calls([commands[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def _kernel_timed(connection_class: Any, kwargs: dict[str, Any]) -> Any:
    """The connection class to use, and its arguments (``kwargs`` is changed in place).

    A Python socket with a timeout polls before every send and receive: two system calls
    where one does, about 2 µs per command here. On Linux, plain TCP and Unix connections are
    therefore made blocking, with the timeout enforced by the kernel (``SO_RCVTIMEO`` and
    ``SO_SNDTIMEO``): a read that times out fails as a broken connection, as before. TLS
    connections keep Python's timeouts.
    """
    import redis.connection

    timeout = kwargs.get("socket_timeout")
    bases = (redis.connection.Connection, redis.connection.UnixDomainSocketConnection)
    if not sys.platform.startswith("linux") or not timeout or connection_class not in bases:
        return connection_class
    kwargs["socket_timeout"] = None
    timeval = struct.pack("ll", int(timeout), int(timeout % 1 * 1_000_000))

    class KernelTimed(connection_class):  # type: ignore[misc]
        def _connect(self) -> socket.socket:
            sock: socket.socket = super()._connect()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            return sock

    KernelTimed.__name__ = KernelTimed.__qualname__ = f"KernelTimed{connection_class.__name__}"
    return KernelTimed
