"""The Redis schedule store: beat's last-run times in one hash."""

from __future__ import annotations

from typing import final

from celeriac.config import Config
from celeriac_redis._client import make_client
from celeriac_redis._config import RedisConfig


@final
class RedisScheduleStore:
    """Beat's last-run times in the hash ``<prefix>beat:last_run``, one field per entry.

    :param url: ``redis://host:port/db``; may be the broker's.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._client = make_client(url, settings)
        self._key = f"{settings.key_prefix}beat:last_run"

    def last_run_at(self, entry: str) -> float | None:
        value = self._client.hget(self._key, entry)
        return None if value is None else float(value)

    def set_last_run_at(self, entry: str, when: float) -> None:
        self._client.hset(self._key, entry, repr(when))

    def close(self) -> None:
        self._client.close()
