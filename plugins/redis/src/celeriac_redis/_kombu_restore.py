"""Giving unacknowledged kombu-layout messages back, exactly as kombu's ``QoS.restore_by_tag`` does.

The message is read from ``unacked``, marked redelivered and pushed back to its queue in a
WATCH/MULTI transaction with its removal from ``unacked`` and ``unacked_index``: never
lost, never restored twice, whether celeriac's or Celery's sweep gets there first.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac_redis._client import command

if TYPE_CHECKING:
    import redis
    from redis.client import Pipeline

log = logging.getLogger("celeriac.redis")
SEP = "\x06\x16"
#: kombu's ``unacked_mutex_expire``: the sweep lock outlives a crashed holder by this much.
_MUTEX_EXPIRE = 300
_SWEEP_BATCH = 100


@final
class Restorer:
    def __init__(
        self,
        client: redis.Redis,
        global_prefix: str,
        unacked: str,
        index: str,
        list_key: Callable[[str, int], str],
    ) -> None:
        self._client = client
        self._gp = global_prefix
        self._unacked = unacked
        self._index = index
        self._list_key = list_key

    def restore_expired(self, cutoff: float) -> int:
        """Restore messages delivered before ``cutoff`` (epoch seconds) and never acknowledged.

        Takes kombu's ``unacked_mutex`` so that only one sweep (celeriac's or Celery's) runs.
        """
        from redis.exceptions import LockError

        lock = self._client.lock(f"{self._gp}unacked_mutex", timeout=_MUTEX_EXPIRE)
        if not lock.acquire(blocking=False):
            return 0
        try:
            args = ("ZRANGE", self._index, "-inf", repr(cutoff), "BYSCORE", "LIMIT", 0, _SWEEP_BATCH)
            tags = [tag.decode() for tag in command(self._client, *args)]
            restored = sum(self.restore(tag, leftmost=False, cutoff=cutoff) for tag in tags)
        finally:
            with contextlib.suppress(LockError):  # it expired meanwhile
                lock.release()
        if restored:
            log.warning("restored %d messages whose worker did not acknowledge them in time", restored)
        return restored

    def restore(self, tag: str, *, leftmost: bool, cutoff: float | None = None) -> bool:
        """Push the message back (``leftmost``: to the far end, as a requeue does); False if gone."""

        restored = False

        def transaction(pipe: Pipeline) -> None:
            nonlocal restored
            restored = False
            raw = command(pipe, "HGET", self._unacked, tag)
            score = command(pipe, "ZSCORE", self._index, tag) if cutoff is not None else None
            if raw is None or (cutoff is not None and (score is None or float(score) > cutoff)):
                return  # acknowledged, restored or renewed meanwhile
            message, exchange, routing_key = json.loads(raw)
            targets = self._route(pipe, exchange, routing_key, message)
            pipe.multi()
            command(pipe, "ZREM", self._index, tag)
            command(pipe, "HDEL", self._unacked, tag)
            payload = json.dumps(message) if isinstance(message, dict) else str(message)
            for key in targets:
                command(pipe, "LPUSH" if leftmost else "RPUSH", key, payload)
            restored = True

        self._client.transaction(transaction, self._unacked, self._index)
        return restored

    def _route(self, pipe: Pipeline, exchange: str, routing_key: str, message: Any) -> list[str]:
        """Mark the message redelivered and find its lists, as kombu's ``_do_restore_message``."""
        priority = 0
        if isinstance(message, dict):
            headers, properties = message.get("headers"), message.get("properties")
            if isinstance(headers, dict):
                headers["redelivered"] = True
            if isinstance(properties, dict):
                if isinstance(properties.get("delivery_info"), dict):
                    properties["delivery_info"]["redelivered"] = True
                try:
                    priority = min(max(int(properties.get("priority") or 0), 0), 9)
                except (TypeError, ValueError):
                    priority = 0
        queues = [routing_key]
        if exchange:  # a named exchange: its bindings, as kombu keeps them
            members = command(pipe, "SMEMBERS", f"{self._gp}_kombu.binding.{exchange}")
            bound = [m.decode().split(SEP) for m in members]
            queues = [b[2] for b in bound if len(b) == 3 and b[0] == routing_key] or queues
        return [self._list_key(queue, priority) for queue in queues]
