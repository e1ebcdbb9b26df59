"""A :class:`~celeriac.plugin.KeyValue` on one or more memcached servers (pymemcache).

Keys go to servers by rendezvous hashing (pymemcache's own hasher), each server with a
thread-safe pool of connections. Errors are never swallowed: pymemcache's ``HashClient``
marks a failing server dead and answers misses meanwhile, which would lose results
silently, so it is not used. A chord's set is one value holding its members a line each,
changed by compare-and-swap (``gets`` then ``cas``), so concurrent adds count one at a time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar
from typing import final

from celeriac.plugin import ConfigError
from celeriac.plugin import StoreUnreachableError
from celeriac.plugin import ValueRefusedError
from celeriac.plugin import redact_url

if TYPE_CHECKING:
    from pymemcache.client.base import PooledClient

T = TypeVar("T")
log = logging.getLogger("celeriac.memcached")
#: memcached reads an expiry over 30 days as a Unix time, not a number of seconds.
_RELATIVE_LIMIT = 30 * 24 * 3600
_MAX_KEY = 250
_CAS_ATTEMPTS = 1000


def servers_of(url: str) -> list[tuple[str, int]]:
    """``memcached://host:port[;host2:port2...]`` (Celery's form; ``memcache://`` too)."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("memcached", "memcache") or not rest.strip("/"):
        raise ConfigError(f"result_store {url!r}: expected memcached://host:port[;host2:port2]")
    servers = []
    for part in rest.strip("/").split(";"):
        host, _, port = part.strip().rpartition(":")
        if not host:
            host, port = port, "11211"
        try:
            servers.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ConfigError(f"result_store {url!r}: {part!r} is not host:port") from None
    return servers


def safe_key(key: str) -> str:
    """``key`` when memcached takes it (ASCII without spaces or control characters, at most
    250 bytes), else a digest of it."""
    if len(key) <= _MAX_KEY and key.isascii() and all(32 < ord(c) < 127 for c in key):
        return key
    return "celeriac-sha256-" + hashlib.sha256(key.encode()).hexdigest()


def ttl(expires: float | None) -> int:
    """memcached's expiry for ``expires`` seconds: 0 is never, at least 1 s, absolute past 30 days."""
    if expires is None:
        return 0
    seconds = max(1, round(expires))
    return seconds if seconds <= _RELATIVE_LIMIT else int(time.time()) + seconds


@final
class MemcachedKeyValue:
    """Keys on the servers of ``url``.

    :param max_item_size: the largest value stored, in bytes (memcached's ``-I``, 1 MiB by
        default, less room for the key and the item's header); larger ones are refused.
    :param retry_timeout: seconds to keep trying servers that stopped answering.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 2.0,
        timeout: float = 5.0,
        max_pool_size: int = 32,
        max_item_size: int = 1024 * 1024 - 512,
        retry_timeout: float = 30.0,
    ) -> None:
        from pymemcache.client.base import PooledClient
        from pymemcache.client.rendezvous import RendezvousHash

        self.url = url
        self.max_item_size = max_item_size
        self.retry_timeout = retry_timeout
        self._reached = False  # has this process reached the servers yet?
        self._clients: dict[str, PooledClient] = {}
        for host, port in servers_of(url):
            self._clients[f"{host}:{port}"] = PooledClient(
                (host, port),
                connect_timeout=connect_timeout,
                timeout=timeout,
                max_pool_size=max_pool_size,
                no_delay=True,
                default_noreply=False,
            )
        self._hash = RendezvousHash(nodes=list(self._clients))
        self._only = next(iter(self._clients.values())) if len(self._clients) == 1 else None

    def _client(self, key: str) -> PooledClient:
        return self._only or self._clients[self._hash.get_node(key)]

    def _call(self, call: Callable[[], T]) -> T:
        """Run one command. Once this process has reached the servers, one that stops
        answering (a restart) is tried again with back-off for up to ``retry_timeout``
        seconds; then, or at once for servers never reached, a StoreUnreachableError."""
        from pymemcache.exceptions import MemcacheUnexpectedCloseError

        deadline: float | None = None
        delay = 0.05
        while True:
            try:
                result = call()
            except (OSError, MemcacheUnexpectedCloseError) as exc:
                if self._reached:
                    deadline = deadline or time.monotonic() + self.retry_timeout
                    if time.monotonic() < deadline:
                        log.warning("%s: %s; trying again in %.2f s", redact_url(self.url), exc, delay)
                        time.sleep(delay)
                        delay = min(delay * 2, 1.0)
                        continue
                raise StoreUnreachableError(self.url, f"{type(exc).__name__}: {exc}") from exc
            self._reached = True
            return result

    def get(self, key: str) -> bytes | None:
        key = safe_key(key)
        value: bytes | None = self._call(lambda: self._client(key).get(key))
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        safe = [safe_key(key) for key in keys]
        by_server: dict[int, tuple[PooledClient, list[str]]] = {}
        for key in safe:
            client = self._client(key)
            by_server.setdefault(id(client), (client, []))[1].append(key)
        found: dict[str, bytes] = {}
        for client, some in by_server.values():
            for start in range(0, len(some), 500):
                chunk = some[start : start + 500]
                found.update(self._call(functools.partial(client.get_many, chunk)))
        return [found.get(key) for key in safe]

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        self._refuse_large(key, value)
        key = safe_key(key)
        self._stored(
            key, value, lambda: self._client(key).set(key, value, expire=ttl(expires), noreply=False)
        )

    def _refuse_large(self, key: str, value: bytes) -> None:
        if len(value) > self.max_item_size:
            raise ValueRefusedError(
                f"{key}: a value of {len(value):,} bytes is over memcached's item size "
                f"({self.max_item_size:,} bytes, [memcached] max_item_size); it was not stored"
            )

    def _stored(self, key: str, value: bytes, call: Callable[[], Any]) -> Any:
        from pymemcache.exceptions import MemcacheServerError

        try:
            return self._call(call)
        except MemcacheServerError as exc:
            if "too large" in str(exc).lower():
                raise ValueRefusedError(
                    f"{key}: memcached refused a value of {len(value):,} bytes as too large ({exc})"
                ) from exc
            raise

    def delete(self, key: str) -> None:
        key = safe_key(key)
        self._call(lambda: self._client(key).delete(key, noreply=False))

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        """Add by compare-and-swap: read the members with their CAS token, write them back
        with one more only if nobody wrote in between, else read again."""
        if "\n" in member:
            raise ValueError(f"a set member cannot hold a newline: {member!r}")
        entry = member.encode() + b"\n"
        key = safe_key(key)
        client = self._client(key)
        expire = ttl(expires)
        for attempt in range(_CAS_ATTEMPTS):
            value, token = self._call(lambda: client.gets(key))
            if value is None:
                if self._stored(key, entry, lambda: client.add(key, entry, expire=expire, noreply=False)):
                    return 1
            else:
                members = value.splitlines(keepends=True)
                if entry in members:
                    return 0
                grown = value + entry
                self._refuse_large(key, grown)
                swap = functools.partial(client.cas, key, grown, token, expire=expire, noreply=False)
                if self._stored(key, grown, swap):
                    return len(members) + 1
            time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 10)))
        raise StoreUnreachableError(
            self.url, f"{key}: no compare-and-swap succeeded in {_CAS_ATTEMPTS} attempts"
        )

    def sweep(self) -> int:
        return 0  # memcached expires items itself

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
