"""The Redis schedule store: beat's last-run times in one hash, its leader lock, and entries
added while beat runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from typing import final

from celeriac.plugin import Config
from celeriac_redis._client import command
from celeriac_redis._client import make_client
from celeriac_redis._config import RedisConfig

# KEYS: lock. ARGV: owner, ttl ms. The lease runs on the server's clock (PEXPIRE).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lock. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: lock, claims hash. ARGV: owner, entry, when. The fence: only the live owner records.
_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""


@final
class RedisScheduleStore:
    """Beat's last-run times in the hash ``<prefix>beat:last_run``, one field per entry.

    Also a :class:`~celeriac.plugin.BeatLock` for beat instances on any number of hosts:
    the lease is the key ``<prefix>{beat}:lock:<name>`` (``SET NX PX``, renewed and released
    by scripts that check the owner), and claimed runs are the hash ``<prefix>{beat}:claimed``.
    The two share a hash tag, so the claim script also runs on Redis Cluster.

    :param url: ``redis://host:port/db``; may be the broker's.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._client = make_client(url, settings)
        self._key = f"{settings.key_prefix}beat:last_run"
        self._lock_prefix = f"{settings.key_prefix}{{beat}}:lock:"
        self._claims = f"{settings.key_prefix}{{beat}}:claimed"
        # Entries and their version share a hash tag, so one MULTI changes both on Redis Cluster.
        self._entries = f"{settings.key_prefix}{{beat}}:entries"
        self._version = f"{settings.key_prefix}{{beat}}:entries:version"
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._claim = self._client.register_script(_CLAIM)

    def last_run_at(self, entry: str) -> float | None:
        value = self._client.hget(self._key, entry)
        return None if value is None else float(value)

    def set_last_run_at(self, entry: str, when: float) -> None:
        self._client.hset(self._key, entry, repr(when))

    # --- the leader lock -----------------------------------------------------------------

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        key = self._lock_prefix + name
        if command(self._client, "SET", key, owner, "NX", "PX", _ms(ttl)):
            return True
        return self.renew(name, owner, ttl)  # taking a lock one already holds extends it

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self._renew(keys=[self._lock_prefix + name], args=[owner, _ms(ttl)]))

    def release(self, name: str, owner: str) -> None:
        self._release(keys=[self._lock_prefix + name], args=[owner])

    def claim(self, name: str, owner: str, entry: str, when: float) -> bool:
        return bool(
            self._claim(keys=[self._lock_prefix + name, self._claims], args=[owner, entry, repr(when)])
        )

    def claimed_at(self, entry: str) -> float | None:
        value = self._client.hget(self._claims, entry)
        return None if value is None else float(value)

    # --- entries edited while beat runs -------------------------------------------------

    def stored_entries(self) -> dict[str, dict[str, Any]]:
        raw = self._client.hgetall(self._entries)
        return {_text(name): json.loads(body) for name, body in sorted(raw.items())}

    def put_entry(self, name: str, table: Mapping[str, Any]) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._entries, name, json.dumps(dict(table)))
            pipe.incr(self._version)
            pipe.execute()

    def delete_entry(self, name: str) -> bool:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._entries, name)
            pipe.incr(self._version)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def entries_version(self) -> int:
        return int(self._client.get(self._version) or 0)

    def close(self) -> None:
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
