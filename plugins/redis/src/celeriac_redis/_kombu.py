"""The kombu layout: the lists and bookkeeping keys of kombu's Redis transport, shared with Celery.

A Celery client can send to a celeriac worker and a celeriac client to a Celery worker.
What kombu leaves out, celeriac adds in keys of its own that Celery never reads: delivery
counts (poison messages), dead letters, and a delayed set for ETA messages, so that a
celeriac worker never holds an ETA message the way a Celery worker does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac.plugin import TaskIds
from celeriac.plugin import from_kombu
from celeriac.plugin import parse_datetime
from celeriac.plugin import to_kombu
from celeriac_redis import _kombu_scripts as scripts
from celeriac_redis._client import command
from celeriac_redis._client import database
from celeriac_redis._client import make_client
from celeriac_redis._client import make_direct
from celeriac_redis._client import publish_timeout_error
from celeriac_redis._config import RedisConfig
from celeriac_redis._dead import known_queues
from celeriac_redis._dead import list_dead_letters
from celeriac_redis._dead import purge_dead_letters
from celeriac_redis._dead import split_id
from celeriac_redis._fanout import Fanout
from celeriac_redis._fanout import RedisSubscription
from celeriac_redis._keys import band_of
from celeriac_redis._kombu_replies import KombuReplies
from celeriac_redis._kombu_replies import KombuReplyQueue
from celeriac_redis._kombu_restore import Restorer
from celeriac_redis._ledger import RedisStartLedger
from celeriac_redis._packing import dumps_json
from celeriac_redis._packing import pack
from celeriac_redis._packing import unpack

log = logging.getLogger("celeriac.redis")
SEP = "\x06\x16"
#: A message whose ETA is further ahead than this is parked until due, not delivered. Zero:
#: a celeriac client on this layout pushes countdown tasks at once (as Celery does), and the
#: worker runs a delivered ETA up to a second ahead at once (its tolerance for producers'
#: clocks), so anything not parked would run early (``countdown=0.4`` ran after 60 ms).
_PARK_AFTER = 0.0
_FIRST_POLL = 0.002
#: Set anew on every publish: a republished message must not share an ``unacked`` entry.
_FRESH_PROPERTIES = frozenset({"delivery_tag", "delivery_info", "body_encoding"})


@frozen
class KombuTag:
    """A delivery's tag: kombu's delivery tag, the key of its ``unacked`` entry."""

    tag: str


@final
class KombuRedisTransport:
    """Queues in kombu's Redis layout: lists per queue and priority step, ack emulation.

    Priorities follow kombu on Redis: the list of step 0 is served first, so a *lower*
    number is served first, as Celery workers on Redis do; both kinds of worker agree.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._settings = settings
        self._url = url
        self._publish_timeout = config.publish_timeout
        self._client = make_client(url, settings)
        self._direct = make_direct(self._client, settings)
        self._lpush: dict[str, bytes] = {}  # list key -> the packed start of an LPUSH to it
        # kombu's delivery tags are uuid4 strings; drawn from a buffer, not a system call each.
        self._tags = TaskIds()
        self._steps = settings.priority_steps
        global_prefix = settings.kombu_global_keyprefix
        self._gp = global_prefix
        self._unacked = f"{global_prefix}unacked"
        self._index = f"{global_prefix}unacked_index"
        self._counts = f"{settings.key_prefix}kombu:deliveries"
        self._registry = f"{settings.key_prefix}queues"
        self._vt = config.visibility_timeout
        self._ledger = RedisStartLedger(self._client, settings.key_prefix)
        self._next_sweep = 0.0
        self._restorer = Restorer(self._client, global_prefix, self._unacked, self._index, self.list_key)
        register = self._client.register_script
        self._fetch = register(scripts.FETCH)
        self._park = register(scripts.PARK)
        self._bury = register(scripts.DEAD_LETTER)
        self._unbury = register(scripts.REQUEUE_DEAD)
        self._purge = register(scripts.PURGE)
        # kombu's ``keyprefix_fanout``, ``/{db}.``, behind its global key prefix as kombu's
        # prefixed client PUBLISHes it: Celery's workers on the same database hear it.
        fanout_prefix = f"{global_prefix}/{database(self._client)}."
        self._fanout = Fanout(self._client, lambda channel: fanout_prefix + channel, _encode, _decode)
        self._replies = KombuReplies(self._client, global_prefix, settings)
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._connection_errors = (RedisConnectionError, RedisTimeoutError, OSError)
        self._response_error = ResponseError

    # --- keys -------------------------------------------------------------------------------

    def list_key(self, queue: str, priority: int) -> str:
        """kombu's ``_q_for_pri``: the bare queue name for step 0, ``queue\\x06\\x16<step>`` above."""
        step = self._steps[band_of(priority, self._steps)]
        return f"{self._gp}{queue}{SEP}{step}" if step else f"{self._gp}{queue}"

    def _lists(self, queue: str) -> list[str]:
        return [self.list_key(queue, step) for step in self._steps]

    def _own(self, queue: str, kind: str) -> str:
        return f"{self._settings.key_prefix}{{{queue}}}:{kind}"

    # --- producing ------------------------------------------------------------------------

    def record_start(self, key: str) -> int:
        """Count a start of a message's task (``celeriac.plugin.StartLedger``)."""
        return self._ledger.record_start(key)

    def starts(self, key: str) -> int:
        return self._ledger.starts(key)

    def forget_starts(self, key: str) -> None:
        self._ledger.forget_starts(key)

    def declare_queue(self, queue: str) -> None:
        command(self._client, "SADD", self._registry, queue)

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """LPUSH kombu envelopes, as kombu's ``_put``.

        A delayed message that carries an ``eta`` header (every task message) is pushed at
        once, as Celery clients do: a Celery worker holds it until then, a celeriac worker
        parks it in Redis. Without that header it waits in celeriac's delayed set.
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
        key = self.list_key(queue, priority)
        tags = self._tags
        messages = [_kombu(envelope, queue, priority, tags.new()) for envelope in envelopes]
        if delay > 0 and not all(envelope.headers.get("eta") for envelope in envelopes):
            due = (time.time() + delay) * 1000
            members = {secrets.token_hex(8).encode() + key.encode() + b"\n" + m: due for m in messages}
            delayed = self._own(queue, "delayed")
            self._direct.node(delayed).call("ZADD", delayed, *_flatten(members), deadline=deadline)
            return
        # The streams layout's hot path, not redis-py's execute_command (see _client.Direct):
        # one command on a free connection, packed once per list up to the message.
        direct = self._direct.node(key)
        if len(messages) > 1:
            direct.call("LPUSH", key, *messages, deadline=deadline)  # the first pushed is the first popped
            return
        lpush = self._lpush.get(key)
        if lpush is None:
            raw = key.encode()
            lpush = b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n" % (len(raw), raw)
            if len(self._lpush) < 10_000:
                self._lpush[key] = lpush
        direct.call_packed((b"%s$%d\r\n%s\r\n" % (lpush, len(messages[0]), messages[0]),), deadline=deadline)

    # --- consuming ------------------------------------------------------------------------

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Pop and record up to ``limit`` messages atomically, polling with back-off when empty.

        Lists cannot be waited on without removing the message (BRPOP), which would lose it
        if the worker died before recording it, so an empty queue is polled: from 2 ms up
        to ``kombu_poll_interval``.
        """
        if limit <= 0 or not queues:
            return []
        lists = [self.list_key(q, step) for step in self._steps for q in queues]  # kombu's order
        names = [q for _ in self._steps for q in queues]
        delayed = [self._own(q, "delayed") for q in queues]
        deadline = time.monotonic() + max(timeout, 0.0)
        sleep = _FIRST_POLL
        while True:
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self._settings.reclaim_interval
                self._restorer.restore_expired(time.time() - self._vt)
            now = time.time()
            keys = [self._unacked, self._index, self._counts, *lists, *delayed]
            args: list[Any] = [limit, repr(now), int(now * 1000), len(lists), len(delayed), *names]
            found, next_due = self._fetch(keys=keys, args=args)
            deliveries = self._deliveries(found, names)
            if deliveries:
                return deliveries
            if found:
                continue  # all parked or refused: look again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = min(sleep, remaining) if next_due < 0 else min(sleep, remaining, next_due / 1000)
            time.sleep(wait)
            sleep = min(sleep * 2, self._settings.kombu_poll_interval)

    def _deliveries(self, found: list[Any], names: list[str]) -> list[Delivery]:
        deliveries = []
        for i in range(0, len(found), 4):
            index, raw_tag, raw, count = found[i : i + 4]
            queue, tag = names[int(index) - 1], raw_tag.decode()
            try:
                data = json.loads(raw)
                envelope = from_kombu(data)
            except (ValueError, MessageError) as exc:
                reason = f"not a kombu message: {exc}"
                log.error("dead-lettering a message of %r: %s", queue, reason)
                bad = Envelope(body=raw, content_type="application/octet-stream")
                self._dead_letter(queue, tag, bad, reason, int(count))
                continue
            due = _eta(envelope)
            if due is not None and due - time.time() > _PARK_AFTER:
                member = secrets.token_hex(8) + self.list_key(queue, _priority(data)) + "\n" + raw.decode()
                keys = [self._unacked, self._index, self._counts, self._own(queue, "delayed")]
                self._park(keys=keys, args=[tag, int(due * 1000), member])
                continue
            redelivered = bool(envelope.headers.get("redelivered"))
            deliveries.append(
                Delivery(
                    envelope=envelope,
                    queue=queue,
                    tag=KombuTag(tag),
                    delivery_count=max(int(count), 2 if redelivered else 1),
                )
            )
        return deliveries

    # --- settling ---------------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """kombu's ack: ZREM ``unacked_index``, HDEL ``unacked``; and forget the count."""
        if not deliveries:
            return
        tags = [_tag(d).tag for d in deliveries]
        with self._client.pipeline(transaction=True) as pipe:
            command(pipe, "ZREM", self._index, *tags)
            command(pipe, "HDEL", self._unacked, *tags)
            command(pipe, "HDEL", self._counts, *tags)
            pipe.execute()

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Requeue as kombu does (marked redelivered, pushed to the far end), or drop."""
        if not requeue:
            self.ack(deliveries)
            return
        for delivery in deliveries:
            self._restorer.restore(_tag(delivery).tag, leftmost=True)

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Move the delivery time in ``unacked_index`` to now, so no sweep restores them."""
        if not deliveries:
            return
        now = time.time()
        members = {_tag(d).tag: now for d in deliveries}
        command(self._client, "ZADD", self._index, "XX", *_flatten(members))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._dead_letter(
            delivery.queue, _tag(delivery).tag, delivery.envelope, reason, delivery.delivery_count
        )

    def _dead_letter(self, queue: str, tag: str, envelope: Envelope, reason: str, count: int) -> None:
        keys = [self._unacked, self._index, self._counts, self._own(queue, "dead")]
        args: list[Any] = [tag, pack(envelope), reason, queue, count, self._settings.dead_letter_max_len]
        self._bury(keys=keys, args=[*args, int(time.time() * 1000)])
        self.declare_queue(queue)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        queues = [queue] if queue is not None else known_queues(self._client, self._registry)
        return list_dead_letters(self._client, queues, lambda name: self._own(name, "dead"), limit)

    def purge_dead_letters(self, queue: str | None = None) -> int:
        """Delete the dead letters of one queue, or of every queue this Redis has seen; count them."""
        queues = [queue] if queue is not None else known_queues(self._client, self._registry)
        return purge_dead_letters(self._client, queues, lambda name: self._own(name, "dead"))

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        """LPUSH a dead letter back as a fresh kombu message; False if the id is unknown."""
        parts = split_id(dead_letter_id)
        if parts is None:
            return False
        queue, entry_id = parts
        try:
            entries = command(self._client, "XRANGE", self._own(queue, "dead"), entry_id, entry_id)
        except self._response_error:  # not a stream id
            return False
        if not entries:
            return False
        envelope = unpack(entries[0][1][b"m"])
        priority = int(envelope.properties.get("priority") or 0)
        message = _kombu(envelope, queue, priority, self._tags.new())
        keys = [self._own(queue, "dead"), self.list_key(queue, priority)]
        return bool(self._unbury(keys=keys, args=[entry_id, message]))

    def purge(self, queue: str) -> int:
        return int(self._purge(keys=[*self._lists(queue), self._own(queue, "delayed")], args=[]))

    def queue_length(self, queue: str) -> int:
        with self._client.pipeline(transaction=False) as pipe:
            for key in self._lists(queue):
                command(pipe, "LLEN", key)
            command(pipe, "ZCARD", self._own(queue, "delayed"))
            return sum(int(n) for n in pipe.execute())

    # --- fan-out ----------------------------------------------------------------------------

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        """PUBLISH a kombu envelope on ``/<db>.<channel>``, as kombu's fanout exchanges do."""
        self._fanout.broadcast(channel, envelope)

    def subscribe(self, channel: str) -> RedisSubscription:
        return self._fanout.subscribe(channel)

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Through kombu's direct exchange: LPUSH onto the queues bound under the routing key."""
        self._replies.send_reply(exchange, routing_key, envelope)

    def reply_queue(self, exchange: str, routing_key: str) -> KombuReplyQueue:
        return self._replies.reply_queue(exchange, routing_key)

    def close(self) -> None:
        self._client.close()


def _kombu(envelope: Envelope, queue: str, priority: int, tag: str) -> bytes:
    """kombu's JSON envelope (``to_kombu``) for the default exchange, with ``tag`` as its
    delivery tag, written as the streams layout writes its JSON (orjson when it is exact)."""
    properties = {k: v for k, v in envelope.properties.items() if k not in _FRESH_PROPERTIES}
    if priority:
        properties.setdefault("priority", priority)
    properties["delivery_info"] = {"exchange": "", "routing_key": queue}
    properties["body_encoding"] = "base64"
    properties["delivery_tag"] = tag
    headers = envelope.headers
    if "redelivered" in headers:
        headers = {k: v for k, v in headers.items() if k != "redelivered"}
    return dumps_json(
        {
            "body": base64.b64encode(envelope.body).decode("ascii"),
            "content-encoding": envelope.content_encoding,
            "content-type": envelope.content_type,
            "headers": headers,
            "properties": properties,
        }
    )


def _encode(envelope: Envelope) -> bytes:
    return _dumps(to_kombu(envelope)).encode()


def _decode(data: bytes) -> Envelope:
    return from_kombu(json.loads(data))


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message)


def _eta(envelope: Envelope) -> float | None:
    try:
        eta = parse_datetime(envelope.headers.get("eta"), "eta")
    except MessageError:
        return None  # the worker refuses it with the reason
    return eta.timestamp() if isinstance(eta, dt.datetime) else None


def _priority(message: dict[str, Any]) -> int:
    try:
        return int(message.get("properties", {}).get("priority") or 0)
    except (TypeError, ValueError):
        return 0


def _flatten(scores: Mapping[str, float] | Mapping[bytes, float]) -> list[Any]:
    flat: list[Any] = []
    for member, score in scores.items():
        flat.extend((score, member))
    return flat


def _tag(delivery: Delivery) -> KombuTag:
    if not isinstance(delivery.tag, KombuTag):
        raise TypeError(f"{delivery!r} was not fetched from a KombuRedisTransport")
    return delivery.tag
