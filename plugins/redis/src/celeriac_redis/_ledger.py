"""The start ledger on Redis (``celeriac.plugin.StartLedger``): a counter per message that
expires by itself, shared by the transports and the result store."""

from __future__ import annotations

from typing import Any

from celeriac.plugin import START_LEDGER_TTL
from celeriac_redis._client import command


class RedisStartLedger:
    """``<prefix>started:<task id>:<retries>``: INCR and EXPIRE in one transaction."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}started:"

    def record_start(self, key: str) -> int:
        with self._client.pipeline(transaction=True) as pipe:
            command(pipe, "INCR", self._prefix + key)
            command(pipe, "EXPIRE", self._prefix + key, START_LEDGER_TTL)
            count, _ = pipe.execute()
        return int(count)

    def starts(self, key: str) -> int:
        value = command(self._client, "GET", self._prefix + key)
        return int(value or 0)

    def forget_starts(self, key: str) -> None:
        command(self._client, "DEL", self._prefix + key)
