"""Direct-exchange replies in kombu's Redis layout, as Celery's remote control sends them.

kombu emulates a direct exchange with a set of bindings, ``_kombu.binding.<exchange>``, whose
members are ``routing_key + SEP + pattern + SEP + queue``: a publish LPUSHes its envelope onto
the list of every queue bound under the routing key. A Celery client binds its reply queue
``<oid>.reply.celery.pidbox`` so, with a deadline in ``_kombu.binding_deadlines`` because the
queue expires; kombu's sweep drops a binding table nobody refreshed by then. A reply queue
here is bound the same way, and unbound and deleted when closed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import final

from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac_redis._client import block_ms
from celeriac_redis._client import command
from celeriac_redis._config import RedisConfig
from celeriac_redis._kombu_envelope import from_kombu
from celeriac_redis._kombu_envelope import to_kombu

if TYPE_CHECKING:
    import redis

log = logging.getLogger("celeriac.redis")
SEP = "\x06\x16"
#: Celery's ``control_queue_expires`` (10 s), in ms: a reply list nobody reads is deleted then.
REPLY_EXPIRES_MS = 10_000
#: kombu's MIN_BINDING_TTL: a binding table lives at least an hour past its last refresh.
BINDING_TTL_MS = 3_600_000

#: KEYS: the binding table, the deadline set; ARGV: member, exchange, ttl in ms. SADD the
#: binding and raise the exchange's deadline to ttl from now on the server's clock (kombu's rule).
BIND = """
redis.call('SADD', KEYS[1], ARGV[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], 'GT', ms + tonumber(ARGV[3]), ARGV[2])
"""


@final
class KombuReplies:
    """``send_reply`` and ``reply_queue`` for one client and kombu global key prefix."""

    def __init__(self, client: redis.Redis, global_prefix: str, settings: RedisConfig) -> None:
        self._client = client
        self._gp = global_prefix
        self._settings = settings
        self._bind = client.register_script(BIND)

    def _table(self, exchange: str) -> str:
        return f"{self._gp}_kombu.binding.{exchange}"

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """LPUSH the kombu envelope onto each queue bound under the routing key (kombu's
        direct exchange); the list expires if nobody reads it."""
        queues = set()
        for raw in command(self._client, "SMEMBERS", self._table(exchange)):
            key, _pattern, queue = _split(raw.decode())
            if key == routing_key and queue:
                queues.add(queue)
        if not queues:
            log.debug("no queue bound to %s under %r: reply dropped", exchange, routing_key)
            return
        message = json.dumps(to_kombu(envelope, exchange=exchange, routing_key=routing_key))
        with self._client.pipeline(transaction=False) as pipe:
            for queue in sorted(queues):
                command(pipe, "LPUSH", self._gp + queue, message)
                command(pipe, "PEXPIRE", self._gp + queue, REPLY_EXPIRES_MS)
            pipe.execute()

    def reply_queue(self, exchange: str, routing_key: str) -> KombuReplyQueue:
        """Bind ``<routing key>.<exchange>`` under the routing key, as Celery binds its own."""
        queue = f"{routing_key}.{exchange}"
        member = SEP.join((routing_key, "", queue))
        deadlines = f"{self._gp}_kombu.binding_deadlines"
        self._bind(keys=[self._table(exchange), deadlines], args=[member, exchange, BINDING_TTL_MS])

        def unbind() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                command(pipe, "SREM", self._table(exchange), member)
                command(pipe, "DEL", self._gp + queue)
                pipe.execute()

        return KombuReplyQueue(self._client, self._gp + queue, self._settings, unbind)


@final
class KombuReplyQueue:
    """The list of one reply queue, read with BRPOP; closing it unbinds and deletes it."""

    def __init__(
        self, client: redis.Redis, key: str, settings: RedisConfig, unbind: Callable[[], None]
    ) -> None:
        self._client = client
        self._key = key
        self._settings = settings
        self._unbind = unbind

    def get(self, timeout: float) -> list[Envelope]:
        """What arrived, waiting at most ``timeout`` seconds for the first reply."""
        received: list[Envelope] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                raw = command(self._client, "RPOP", self._key)
            else:
                # BRPOP 0 waits forever: always give it a positive bound under the socket timeout.
                popped = command(self._client, "BRPOP", self._key, block_ms(remaining, self._settings) / 1000)
                raw = popped[1] if popped else None
            if raw is None:
                if received or time.monotonic() >= deadline:
                    return received
                continue
            try:
                received.append(from_kombu(json.loads(raw)))
            except (ValueError, MessageError) as exc:
                log.warning("skipped an undecodable reply on %s: %s", self._key, exc)

    def close(self) -> None:
        self._unbind()


def _split(member: str) -> tuple[str, str, str]:
    """A binding member's routing key, pattern and queue (empty strings when malformed)."""
    parts = member.split(SEP, 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", "")
