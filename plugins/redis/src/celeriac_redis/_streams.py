"""The streams layout: one Redis stream per queue and priority band, read through a consumer group.

A fetched entry stays in the group's pending entries list (PEL) until it is acknowledged
(XACK and XDEL). The PEL keeps who holds each entry, since when, and how often it was
delivered: that is the lease, the visibility timeout and the delivery count, all kept by
Redis. A live worker renews its leases; a dead worker's entries are claimed by another
worker once idle for ``visibility_timeout``. Delayed messages wait in a sorted set scored
by due time and are moved to their stream by the fetch script, so no worker holds them.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac_redis import _scripts
from celeriac_redis._client import Direct
from celeriac_redis._client import Lua
from celeriac_redis._client import block_ms
from celeriac_redis._client import database
from celeriac_redis._client import is_cluster
from celeriac_redis._client import make_client
from celeriac_redis._client import make_direct
from celeriac_redis._client import publish_timeout_error
from celeriac_redis._config import RedisConfig
from celeriac_redis._dead import known_queues
from celeriac_redis._dead import list_dead_letters
from celeriac_redis._dead import purge_dead_letters
from celeriac_redis._dead import split_id
from celeriac_redis._dead import text as _text
from celeriac_redis._fanout import Fanout
from celeriac_redis._fanout import RedisSubscription
from celeriac_redis._keys import QueueKeys
from celeriac_redis._keys import band_of
from celeriac_redis._ledger import RedisStartLedger
from celeriac_redis._packing import pack
from celeriac_redis._packing import unpack

log = logging.getLogger("celeriac.redis")
_PROMOTE_BATCH = 1000
#: Acks that failed on a broken connection are retried with the next batch; beyond this many
#: the oldest are left to come back after their visibility timeout, which is safe too.
_MAX_RETRIED_ACKS = 100_000
# The scripts of the hot path, run with EVALSHA through the direct connections.
_FETCH = Lua(_scripts.FETCH)
_ACK = Lua(_scripts.ACK)
_EXTEND = Lua(_scripts.EXTEND)
_REQUEUE = Lua(_scripts.REQUEUE)
_RELEASE = Lua(_scripts.RELEASE)
_DELAY = Lua(_scripts.DELAY)
#: On a cluster, a worker whose queues live in several slots blocks on one queue at a time
#: (one command cannot span slots), for at most this long before looking at the next.
_CLUSTER_TURN = 0.1


@frozen
class StreamTag:
    """A delivery's tag: the band stream, the entry id, and the PEL counter it was handed out with."""

    band: int
    id: bytes
    count: int


@final
class RedisTransport:
    """Queues on Redis Streams with consumer groups: at-least-once, leased, counted deliveries.

    Nothing connects until the first command. Methods may be called from several threads.

    :param url: ``redis://host:port/db``, ``rediss://`` for TLS, or ``unix:///path``.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._settings = settings
        self._url = url
        self._publish_timeout = config.publish_timeout
        self._client = make_client(url, settings)
        self._direct = make_direct(self._client, settings)
        self._cluster = is_cluster(self._client)
        self._turn = 0  # the queue a multi-slot worker on a cluster blocks on next
        self._steps = settings.priority_steps
        self._group = settings.group
        self._registry = f"{settings.key_prefix}queues"
        self._min_idle_ms = max(int(config.visibility_timeout * 1000), 1)
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._keys: dict[str, QueueKeys] = {}
        #: (queue, priority) -> its node's connections, band stream, and start of an XADD, packed
        self._stream_of: dict[tuple[str, int], tuple[Direct, str, bytes]] = {}
        self._next_reclaim = 0.0
        self._retry_acks: list[Delivery] = []
        self._wakes: list[tuple[str, Any]] = []  # (queue, id) of wake entries read, acked by the next fetch
        #: Entries a blocking read returned beyond the ``limit`` asked for: leased to this
        #: consumer, handed out first by the next fetch, renewed with the others, given back
        #: (uncounted) by close().
        self._surplus: list[Delivery] = []
        #: When the last fetch ended in a blocking read that delivered messages, the next one
        #: blocks again at once (XREADGROUP also returns at once when entries are waiting):
        #: the fetch script is only needed when delayed messages may be due, leases may need
        #: reclaiming, or a wake entry came. Monotonic time until which that holds, or 0.
        self._block_again_until = 0.0
        #: Packed blocking reads and their stream -> (queue index, band) maps, by
        #: (queues, limit, block ms): an idle worker sends the same one again and again.
        self._block_commands: dict[tuple[Any, ...], tuple[Direct, Any, dict[str, tuple[int, int]]]] = {}
        self._lock = threading.Lock()
        self._ledger = RedisStartLedger(self._client, settings.key_prefix)
        register = self._client.register_script  # computes the SHA locally; loads on first use
        self._bury = register(_scripts.DEAD_LETTER)
        self._unbury = register(_scripts.REQUEUE_DEAD)
        self._purge = register(_scripts.PURGE)
        self._length = register(_scripts.LENGTH)
        # Channels are server-wide: the database is part of the name, as the key prefix is.
        prefix = f"{settings.key_prefix}broadcast:/{database(self._client)}."
        self._fanout = Fanout(self._client, lambda channel: prefix + channel, pack, unpack)
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._connection_errors = (RedisConnectionError, RedisTimeoutError, OSError)
        self._response_error = ResponseError

    @property
    def consumer(self) -> str:
        """This transport's consumer name in the group: ``host:pid:random``."""
        return self._consumer

    def keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys.build(self._settings.key_prefix, queue, self._steps)
        return keys

    # --- producing ------------------------------------------------------------------------

    def record_start(self, key: str) -> int:
        """Count a start of a message's task (``celeriac.plugin.StartLedger``)."""
        return self._ledger.record_start(key)

    def starts(self, key: str) -> int:
        return self._ledger.starts(key)

    def forget_starts(self, key: str) -> None:
        self._ledger.forget_starts(key)

    def declare_queue(self, queue: str) -> None:
        """Record the queue's name (for listing dead letters); streams and groups appear on use."""
        self._client.sadd(self._registry, queue)

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """Append to the band stream of ``priority``, or to the delayed set when ``delay`` > 0.

        A connection error is retried until ``publish_timeout`` has passed, then raised as
        :class:`~celeriac.PublishTimeoutError`; nothing is sent after that.
        """
        if not envelopes:
            return
        try:
            self._publish(queue, envelopes, priority, delay, time.monotonic() + self._publish_timeout)
        except self._connection_errors as exc:
            raise publish_timeout_error(self._url, self._publish_timeout, exc) from exc

    def _publish(
        self, queue: str, envelopes: Sequence[Envelope], priority: int, delay: float, deadline: float
    ) -> None:
        if delay > 0:
            keys = self.keys(queue)
            tag = str(band_of(priority, self._steps)).encode()
            members = [secrets.token_hex(8).encode() + tag + pack(e) for e in envelopes]
            args = (int(delay * 1000), *members)
            if self._cluster:  # routed by slot, within the retry budget
                self._direct.run(_DELAY, (keys.delayed, keys.wake), args)
            else:
                self._direct.node(keys.delayed).run(
                    _DELAY, (keys.delayed, keys.wake), args, deadline=deadline
                )
            return
        target = self._stream_of.get((queue, priority))
        if target is None:
            stream = self.keys(queue).bands[band_of(priority, self._steps)]
            direct = self._direct.node(stream)
            # XADD <stream> * m <value>, packed once up to the value's length (b"$0\r\n\r\n").
            target = (direct, stream, b"".join(direct.pack("XADD", stream, "*", "m", b""))[:-6])
            if len(self._stream_of) < 10_000 and not self._cluster:  # a cluster's slots may move
                self._stream_of[(queue, priority)] = target
        direct, stream, xadd = target
        if len(envelopes) == 1:
            data = pack(envelopes[0])
            direct.call_packed((b"%s$%d\r\n%s\r\n" % (xadd, len(data), data),), deadline=deadline)  # one send
            return
        commands = [("XADD", stream, "*", "m", pack(envelope)) for envelope in envelopes]
        replies = direct.calls(commands, deadline=deadline)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    # --- consuming ------------------------------------------------------------------------

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Reserve up to ``limit`` messages, highest band first, in one script run.

        When nothing is there, one XREADGROUP blocks on every band (and wake) stream until
        an entry arrives, a delayed message is due, or ``timeout`` passes. Redis hands a new
        entry to one blocked consumer only, and with the entry itself: no second round trip,
        and idle workers are not all woken for one message. After such a read, the next
        fetch blocks again straight away unless the script has work to do (see
        ``_block_again_until``), so an idle worker costs one command per message.
        """
        if limit <= 0 or not queues:
            return []
        if self._surplus:
            with self._lock:
                handed, self._surplus = self._surplus[:limit], self._surplus[limit:]
            return handed
        key_sets = [self.keys(queue) for queue in queues]
        if self._cluster and len(key_sets) > 1:
            return self._fetch_each(key_sets, limit, timeout)
        now = time.monotonic()
        deadline = now + max(timeout, 0.0)
        # Never past the next reclaim or due delayed message (the script's work), in steps
        # of 100 ms, so that the packed read is one of a few.
        wait = min(timeout, math.floor((self._block_again_until - now) * 10) / 10)
        if wait >= 0.1 and not self._wakes:
            deliveries = self._block(key_sets, limit, wait, keep=True)
            if deliveries:
                return deliveries
        self._block_again_until = 0.0
        flat = [key for keys in key_sets for key in keys.all]
        while True:
            now = time.monotonic()
            reclaim = now >= self._next_reclaim
            if reclaim:
                self._next_reclaim = now + self._settings.reclaim_interval
            args: list[Any] = [self._group, self._consumer, limit, int(reclaim), self._min_idle_ms]
            args += [len(self._steps), _PROMOTE_BATCH, *self._take_wakes(key_sets)]
            found, next_due = self._direct.run(_FETCH, flat, args)
            if found:
                return self._deliveries(key_sets, found)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = remaining if next_due < 0 else min(remaining, next_due / 1000)
            if wait > 0.001:
                deliveries = self._block(key_sets, limit, wait)
                if deliveries:
                    # Until the next reclaim, or the next delayed message is due, the script
                    # would find nothing a blocking read does not.
                    until = self._next_reclaim
                    if next_due >= 0:
                        until = min(until, now + next_due / 1000)
                    self._block_again_until = until
                    return deliveries

    def _fetch_each(self, key_sets: list[QueueKeys], limit: int, timeout: float) -> list[Delivery]:
        """:meth:`fetch` on a cluster for queues in several slots: one script run per queue.

        No command can span slots, so the blocking read waits on one queue at a time, for
        ``_CLUSTER_TURN`` seconds at most, taking the queues in turn.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            reclaim = now >= self._next_reclaim
            if reclaim:
                self._next_reclaim = now + self._settings.reclaim_interval
            deliveries: list[Delivery] = []
            next_due = -1
            for keys in key_sets:
                remaining = limit - len(deliveries)
                if remaining <= 0:
                    break
                args: list[Any] = [self._group, self._consumer, remaining, int(reclaim), self._min_idle_ms]
                args += [len(self._steps), _PROMOTE_BATCH, *self._take_wakes([keys])]
                found, due = self._direct.run(_FETCH, keys.all, args)
                deliveries += self._deliveries([keys], found)
                if due >= 0:
                    next_due = due if next_due < 0 else min(next_due, due)
            if deliveries:
                return deliveries
            remaining_time = deadline - time.monotonic()
            if remaining_time <= 0:
                return []
            wait = min(remaining_time, _CLUSTER_TURN)
            if next_due >= 0:
                wait = min(wait, next_due / 1000)
            self._turn = (self._turn + 1) % len(key_sets)
            if wait > 0.001:
                deliveries = self._block([key_sets[self._turn]], limit, wait)
                if deliveries:
                    return deliveries

    def _take_wakes(self, key_sets: list[QueueKeys]) -> list[Any]:
        """The wake entries read for these queues, as (queue index, id) arguments of the fetch script."""
        if not self._wakes:
            return []
        index_of = {keys.queue: index for index, keys in enumerate(key_sets)}
        with self._lock:
            taken = [(queue, entry) for queue, entry in self._wakes if queue in index_of]
            self._wakes = [(queue, entry) for queue, entry in self._wakes if queue not in index_of]
        return [value for queue, entry in taken for value in (index_of[queue], entry)]

    def _block(
        self, key_sets: list[QueueKeys], limit: int, wait: float, *, keep: bool = False
    ) -> list[Delivery]:
        """One XREADGROUP BLOCK on every band and wake stream; ``keep`` the packed command."""
        block = block_ms(wait, self._settings)
        cache_key = (tuple(keys.queue for keys in key_sets), limit, block)
        cached = self._block_commands.get(cache_key)
        if cached is None:
            bands = [
                (i, band, keys.bands[band])
                for band in reversed(range(len(self._steps)))
                for i, keys in enumerate(key_sets)
            ]
            wakes = [(i, -1, keys.wake) for i, keys in enumerate(key_sets)]
            streams = {key: (i, band) for i, band, key in [*bands, *wakes]}
            args = ("XREADGROUP", "GROUP", self._group, self._consumer, "COUNT", limit, "BLOCK", block)
            direct = self._direct.node(key_sets[0].wake)  # one slot: a single Redis, or one queue
            cached = (direct, direct.pack(*args, "STREAMS", *streams, *[">"] * len(streams)), streams)
            if keep and not self._cluster:  # a cluster's slots may move to another node
                if len(self._block_commands) >= 64:  # a few, unless the queues keep changing
                    self._block_commands.clear()
                self._block_commands[cache_key] = cached
        direct, packed, streams = cached
        try:
            reply = direct.call_packed(packed)
        except self._response_error as exc:  # a stream deleted meanwhile (or a slot moved): the script looks
            log.debug("blocking read failed (%s); looking again", exc)
            self._block_again_until = 0.0
            return []
        found: list[Any] = []
        woken = False
        for name, entries in _streams_of(reply):
            index, band = streams[_text(name)]
            for entry_id, fields in entries:
                if band < 0:
                    woken = True
                    with self._lock:
                        self._wakes.append((key_sets[index].queue, entry_id))
                else:
                    before = _field(fields, b"n") or b"0"
                    found.extend((index, band, entry_id, _field(fields, b"m"), before, 1))
        if woken:
            self._block_again_until = 0.0  # a delayed message was published: the script looks
        # Streams are listed highest band first, so the surplus (several streams answered
        # at once) is the lowest-priority part.
        deliveries = self._deliveries(key_sets, found)
        if len(deliveries) > limit:
            with self._lock:
                self._surplus.extend(deliveries[limit:])
        return deliveries[:limit]

    def _deliveries(self, key_sets: list[QueueKeys], found: list[Any]) -> list[Delivery]:
        deliveries = []
        for i in range(0, len(found), 6):
            index, band, entry_id, data, before, count = found[i : i + 6]
            queue = key_sets[int(index)].queue
            tag = StreamTag(int(band), entry_id, int(count))
            try:
                envelope = unpack(data)
            except MessageError as exc:
                reason = f"unreadable stream entry {entry_id!r}: {exc}"
                log.error("dead-lettering an entry of %r: %s", queue, reason)
                self._dead_letter(queue, tag, reason)
                continue
            deliveries.append(
                Delivery(envelope=envelope, queue=queue, tag=tag, delivery_count=int(before) + int(count))
            )
        return deliveries

    # --- settling ---------------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove the messages (XACK and XDEL) that this consumer still holds; one round trip."""
        with self._lock:
            retried, self._retry_acks = self._retry_acks, []
        batch = [*retried, *deliveries]
        if not self._settle(_ACK, batch, "acknowledge"):
            with self._lock:
                self._retry_acks = [*batch, *self._retry_acks][-_MAX_RETRIED_ACKS:]

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Requeue at the end of the band, the delivery count carried over; or drop."""
        if requeue:
            self._settle(_REQUEUE, deliveries, "requeue")
        else:
            self._settle(_ACK, deliveries, "drop")

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Reset the idle time of the entries this consumer still holds (XCLAIM JUSTID).

        The surplus of a blocking read is renewed too: the worker does not know it yet.
        """
        with self._lock:
            surplus = list(self._surplus)
        self._settle(_EXTEND, [*deliveries, *surplus], "renew the lease of")

    def _settle(self, script: Lua, deliveries: Sequence[Delivery], what: str) -> bool:
        """Run ``script`` once per queue, all in one round trip; a broken connection is logged, not raised.

        After redis-py's own retries, giving up is safe: an unacknowledged message comes back.
        """
        if not deliveries:
            return True
        by_queue: dict[str, list[Any]] = defaultdict(list)
        for delivery in deliveries:
            tag = _tag(delivery)
            by_queue[delivery.queue].extend((tag.band, tag.id, tag.count))
        runs = [
            (script, self.keys(queue).bands, (self._group, self._consumer, *triples))
            for queue, triples in by_queue.items()
        ]
        try:
            if len(runs) == 1:
                self._direct.run(*runs[0])
            else:
                self._direct.run_many(runs)
        except self._connection_errors as exc:
            log.warning(
                "could not %s %d messages (%s); Redis will deliver them again", what, len(deliveries), exc
            )
            return False
        return True

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the entry to the queue's dead-letter stream with the reason, atomically with its ack."""
        self._dead_letter(delivery.queue, _tag(delivery), reason)

    def _dead_letter(self, queue: str, tag: StreamTag, reason: str) -> None:
        keys = self.keys(queue)
        args: list[Any] = [self._group, self._consumer, tag.band, tag.id, tag.count, reason, queue]
        try:
            self._bury(keys=[*keys.bands, keys.dead], args=[*args, self._settings.dead_letter_max_len])
            self._client.sadd(self._registry, queue)
        except self._connection_errors as exc:
            log.warning("could not dead-letter a message of %r (%s); it will come back", queue, exc)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of one queue, or of every queue this Redis has seen, oldest first."""
        queues = [queue] if queue is not None else known_queues(self._client, self._registry)
        return list_dead_letters(self._client, queues, lambda name: self.keys(name).dead, limit)

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        """Put a dead letter back on its queue, counted as never delivered; False if unknown."""
        parts = split_id(dead_letter_id)
        if parts is None:
            return False
        keys = self.keys(parts[0])
        try:
            return bool(self._unbury(keys=[*keys.bands, keys.dead], args=[parts[1]]))
        except self._response_error as exc:  # not a stream id
            log.debug("cannot requeue dead letter %r: %s", dead_letter_id, exc)
            return False

    def purge_dead_letters(self, queue: str | None = None) -> int:
        """Delete the dead letters of one queue, or of every queue this Redis has seen; count them."""
        queues = [queue] if queue is not None else known_queues(self._client, self._registry)
        return purge_dead_letters(self._client, queues, lambda name: self.keys(name).dead)

    def purge(self, queue: str) -> int:
        """Delete what waits in the queue (delayed included; leased messages stay) and count it."""
        keys = self.keys(queue)
        return int(self._purge(keys=[*keys.bands, keys.delayed], args=[self._group]))

    def queue_length(self, queue: str) -> int:
        """Messages waiting: not yet delivered, or delayed."""
        keys = self.keys(queue)
        return int(self._length(keys=[*keys.bands, keys.delayed], args=[self._group]))

    # --- fan-out ----------------------------------------------------------------------------

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        self._fanout.broadcast(channel, envelope)

    def subscribe(self, channel: str) -> RedisSubscription:
        return self._fanout.subscribe(channel)

    def close(self) -> None:
        """Give back the surplus of a blocking read (uncounted), then close the connections."""
        with self._lock:
            surplus, self._surplus = self._surplus, []
        self._settle(_RELEASE, surplus, "give back")
        self._direct.close()
        self._client.close()


def _streams_of(reply: Any) -> list[tuple[Any, Any]]:
    """XREADGROUP's raw reply as (stream, entries) pairs: an array of pairs, or a map on RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(name, entries) for name, entries in reply]


def _field(fields: Any, name: bytes) -> Any:
    """A field of a stream entry: a flat [field, value, ...] list as Redis sends it, or a dict."""
    if isinstance(fields, dict):
        return fields.get(name)
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == name:
            return fields[i + 1]
    return None


def _tag(delivery: Delivery) -> StreamTag:
    if not isinstance(delivery.tag, StreamTag):
        raise TypeError(f"{delivery!r} was not fetched from a RedisTransport")
    return delivery.tag
