"""The Redis result store, in the layout of Celery's Redis result backend.

A result is the string key ``<prefix>celery-task-meta-<task id>`` holding the result payload
as the result serializer wrote it (with JSON, byte for byte what Celery writes), set with an
expiry and published on a channel of the same name. So Celery's ``AsyncResult`` reads
celeriac results and the reverse, and a waiter is woken by pub/sub instead of polling.

Payloads of other content types cannot be told apart by Celery anyway; they are stored with
a short header naming their content type and state (a layout only celeriac reads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac import states as celeriac_states
from celeriac.plugin import Config
from celeriac.plugin import ResultRecord
from celeriac.plugin import after_fork
from celeriac_redis._client import Connection
from celeriac_redis._client import Direct
from celeriac_redis._client import Lua
from celeriac_redis._client import command
from celeriac_redis._client import is_cluster
from celeriac_redis._client import make_client
from celeriac_redis._client import make_direct
from celeriac_redis._client import pubsub as make_pubsub
from celeriac_redis._config import RedisConfig
from celeriac_redis._ledger import RedisStartLedger

if TYPE_CHECKING:
    from redis.client import PubSub

JSON = "application/json"
#: Starts a payload that is not JSON: then content type, encoding and state, one line each.
MAGIC = b"\x01celeriac-result\n"
#: Seconds between two reads of the key while waiting, in case a message was missed
#: (pub/sub delivers at most once: a reconnect loses what was published meanwhile).
log = logging.getLogger("celeriac.redis")
_RECHECK = 2.0
_MGET_CHUNK = 1000

# A chord's finished header tasks, scored by their place in the group: ZADD NX is idempotent
# per task id (a redelivered part counts once), only the call whose ZADD made the set
# complete returns 1, and the set lists the members in order for a group no client saved.
# A size of 0 is read from KEYS[2], where a Celery client writes it (``.s``) just before it
# sends the *last* header task: read here, in the same script as the count, a part counted
# before the size was written still counts, and the part that completes the set (counted
# after the last one was sent) always sees the size. Returns -1 while the size is unknown.
# KEYS[2] is passed only when the size is not known: on a Redis Cluster the two keys live in
# different slots, which one script may not touch (a chord sent here carries its size).
_CHORD_PART = Lua(r"""
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[4], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local size = tonumber(ARGV[2])
if size <= 0 and #KEYS > 1 then size = tonumber(redis.call('GET', KEYS[2]) or '0') or 0 end
if size <= 0 then return -1 end
if added == 1 and redis.call('ZCARD', KEYS[1]) == size then return 1 end
return 0
""")

# A shared rate limit's next free slot, in microseconds of the server's clock (one clock for
# every worker, wherever it runs). ARGV: interval and longest wait booked, both in µs.
_BOOK_SLOT = Lua(r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local wait = free - now
if wait <= tonumber(ARGV[2]) then
  local after = free + tonumber(ARGV[1])
  redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.ceil((after - now) / 1000) + 1000)
end
return wait
""")

# SUCCESS is final: a duplicate run after a redelivery must not undo it. The state is read
# from the stored value itself: JSON's "status" field (cjson), or the header line otherwise.
_STORE = Lua(r"""
local current = redis.call('GET', KEYS[1])
if current then
  local state = nil
  if string.sub(current, 1, #ARGV[3]) == ARGV[3] then
    local _, _, found = string.find(current, '^[^\n]*\n[^\n]*\n[^\n]*\n([^\n]*)\n')
    state = found
  else
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' then state = meta['status'] end
  end
  if state == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
""")


@final
class RedisResultStore:
    """Task results under Celery's keys, with expiry, pub/sub wake-ups and MGET for groups.

    :param url: ``redis://host:port/db``; may be the broker's.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._client = make_client(url, settings)
        self._direct = make_direct(self._client, settings)
        #: Connections that wait for results speak RESP3, which allows a GET on a subscribed
        #: connection: the subscription and the first read then take one round trip. On a
        #: cluster, waiters use redis-py's ClusterPubSub on the key's node (the RESP2 way):
        #: a waiting connection kept for the next waiter could not GET a key of another slot.
        self._waiters: Direct | None = None
        self._resp3: bool | None = False  # None: not known yet; False: the server has no HELLO 3
        if not is_cluster(self._client):
            self._waiters = Direct(self._client, settings, protocol=3)
            self._resp3 = None
        self._prefix = f"{settings.result_key_prefix}celery-task-meta-"
        self._ledger = RedisStartLedger(self._client, f"{settings.result_key_prefix}celeriac-")
        self._expires_ms = int(config.result_expires * 1000) if config.result_expires > 0 else 0
        #: Idle RESP3 waiters, each with the channel it is still subscribed to (its last
        #: waiter's): the next waiter unsubscribes it in the same round trip as it subscribes.
        self._idle_waiters: list[tuple[Connection, str | None]] = []
        self._idle: list[PubSub] = []  # RESP2 pub/sub connections kept for the next waiter
        self._lock = threading.Lock()
        after_fork(self, RedisResultStore._forget)

    def key(self, task_id: str) -> str:
        return self._prefix + task_id

    def record_start(self, key: str) -> int:
        """Count a start of a message's task (``celeriac.plugin.StartLedger``), for brokers
        that keep no such count themselves (RabbitMQ)."""
        return self._ledger.record_start(key)

    def starts(self, key: str) -> int:
        return self._ledger.starts(key)

    def forget_starts(self, key: str) -> None:
        self._ledger.forget_starts(key)

    def store(self, record: ResultRecord) -> None:
        """Save and publish the state, unless a SUCCESS is stored already (one script run)."""
        self._direct.run(_STORE, (self._prefix + record.task_id,), (_encode(record), self._expires_ms, MAGIC))

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        """``store`` for each record, all in one round trip (a cluster: one per node)."""
        self._direct.run_many(
            [(_STORE, (self._prefix + r.task_id,), (_encode(r), self._expires_ms, MAGIC)) for r in records]
        )

    def get(self, task_id: str) -> ResultRecord | None:
        value: bytes | None = self._direct.call("GET", self._prefix + task_id)
        return None if value is None else _decode(task_id, value)

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        """Records in the order asked: one MGET per thousand ids."""
        records: list[ResultRecord | None] = []
        for start in range(0, len(task_ids), _MGET_CHUNK):
            chunk = task_ids[start : start + _MGET_CHUNK]
            values: list[bytes | None] = self._direct.mget([self.key(task_id) for task_id in chunk])
            records.extend(
                None if value is None else _decode(task_id, value)
                for task_id, value in zip(chunk, values, strict=True)
            )
        return records

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Subscribe to the key's channel and read the key, then sleep until a message says done.

        Subscribing before the read means a result stored in between is either read or
        received: never missed. On RESP3 (Redis 6 and later) both go in one round trip on one
        connection, which Redis runs in order; on RESP2 they take two.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._resp3 is not False and self._waiters is not None:
            try:
                return self._wait_resp3(task_id, states, deadline)
            except _NoResp3Error:
                self._resp3 = False
        return self._wait_resp2(task_id, states, deadline)

    def forget(self, task_id: str) -> None:
        self._direct.call("DEL", self.key(task_id))

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        """Count a finished header task of a chord; True for the one call that completes it.

        A chord sent by a Celery client carries no size in its body: it is read where Celery
        keeps it (``celery-taskset-meta-<group id>.s``), by the counting script itself, since
        the client writes it only before sending the last header task (see ``_CHORD_PART``)."""
        score = "+inf" if index is None else index
        keys = [self._chord_key(group_id)]
        if size <= 0:
            keys.append(self._celery_group_key(group_id, ".s"))
        done: int = self._direct.run(_CHORD_PART, keys, (task_id, max(size, 0), self._expires_ms, score))
        if done == -1:
            log.debug("chord %s: part %s counted; the size is not written yet", group_id, task_id)
        return done == 1

    def chord_started(self, group_id: str, size: int) -> None:
        """Set the size Celery's workers read (``.s``), so they can finish a chord sent here."""
        self._direct.call("DEL", self._celery_group_key(group_id, ".c"))
        key = self._celery_group_key(group_id, ".s")
        if self._expires_ms:
            self._direct.call("SET", key, size, "PX", self._expires_ms)
        else:
            self._direct.call("SET", key, size)

    def chord_members(self, group_id: str) -> list[str]:
        """The finished header tasks of a chord, in group order."""
        members: list[bytes] = self._direct.call("ZRANGE", self._chord_key(group_id), 0, -1)
        return [member.decode() for member in members]

    def _chord_key(self, group_id: str) -> str:
        return f"{self._prefix.removesuffix('celery-task-meta-')}celeriac-chord-parts-{group_id}"

    def _celery_group_key(self, group_id: str, suffix: str) -> str:
        return f"{self._prefix.removesuffix('celery-task-meta-')}celery-taskset-meta-{group_id}{suffix}"

    def reserve_slot(self, key: str, interval: float, max_wait: float) -> float:
        """Book the next slot of a shared rate limit (``global_rate_limit``), on the server's clock."""
        name = f"{self._prefix.removesuffix('celery-task-meta-')}celeriac-rate-{key}"
        wait: int = self._direct.run(_BOOK_SLOT, (name,), (int(interval * 1e6), int(max_wait * 1e6)))
        return wait / 1e6

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._idle_waiters = []
        for pubsub in idle:
            pubsub.close()
        if self._waiters is not None:
            self._waiters.close()
        self._direct.close()
        self._client.close()

    def _forget(self) -> None:
        """In a forked child: drop (not close) the parent's waiting connections."""
        self._idle_waiters = []
        self._idle = []
        self._lock = threading.Lock()

    # --- waiting on RESP3 -------------------------------------------------------------------

    def _wait_resp3(
        self, task_id: str, states: frozenset[str], deadline: float | None
    ) -> ResultRecord | None:
        waiters = self._waiters
        assert waiters is not None  # wait() checks
        failures = 0
        while True:
            try:
                connection, stale = self._idle_waiters.pop()
            except IndexError:
                connection, stale = waiters.new_connection(), None
            try:
                record = self._wait_on(connection, stale, task_id, states, deadline)
            except waiters.retryable:
                connection.disconnect()
                failures += 1
                if failures > waiters.attempts:
                    raise
                waiters.backoff(failures)
                continue
            except self._response_error() as exc:
                connection.disconnect()
                if self._resp3 is None and "HELLO" in str(exc).upper():
                    raise _NoResp3Error from exc
                raise
            except BaseException:
                connection.disconnect()  # interrupted mid-reply: not reusable
                raise
            self._resp3 = True
            self._idle_waiters.append((connection, self.key(task_id)))
            return record

    def _wait_on(
        self,
        connection: Connection,
        stale: str | None,
        task_id: str,
        states: frozenset[str],
        deadline: float | None,
    ) -> ResultRecord | None:
        key = self._prefix + task_id
        commands: list[tuple[str, str]] = [("SUBSCRIBE", key), ("GET", key)]
        if stale is not None and stale != key:
            commands.insert(0, ("UNSUBSCRIBE", stale))
        Direct.ready(connection).send_packed_command(connection.pack_commands(commands))
        channel = key.encode()
        subscribed = read = False
        found: ResultRecord | None = None
        while not (subscribed and read):
            reply = connection.read_response(push_request=True)
            if isinstance(reply, list):  # a push: confirmations, messages (maybe of older channels)
                if _is_channel(reply[1], channel, key):
                    kind = _text(reply[0])
                    subscribed = subscribed or kind == "subscribe"
                    if kind == "message":
                        found = _newer(found, _decode(task_id, reply[2]))
            else:  # the GET
                read = True
                if reply is not None:
                    found = _newer(found, _decode(task_id, reply))
        if found is not None and found.state in states:
            return found
        return _listen_resp3(connection, key, task_id, states, deadline)

    @staticmethod
    def _response_error() -> type[Exception]:
        from redis.exceptions import ResponseError

        return ResponseError

    # --- waiting on RESP2 -------------------------------------------------------------------

    def _wait_resp2(
        self, task_id: str, states: frozenset[str], deadline: float | None
    ) -> ResultRecord | None:
        key = self.key(task_id)
        with self._subscribed(key) as pubsub:
            while True:
                record = self.get(task_id)
                if record is not None and record.state in states:
                    return record
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                record = _listen(pubsub, key, task_id, min(_RECHECK, remaining or _RECHECK))
                if record is not None and record.state in states:
                    return record

    @contextmanager
    def _subscribed(self, key: str) -> Iterator[PubSub]:
        with self._lock:
            pubsub = self._idle.pop() if self._idle else make_pubsub(self._client)
        healthy = False
        try:
            pubsub.subscribe(key)
            _confirmed(pubsub, key)
            yield pubsub
            command(pubsub, "UNSUBSCRIBE", key)  # its confirmation is skipped by the next waiter
            healthy = True
        finally:
            if healthy:
                with self._lock:
                    self._idle.append(pubsub)
            else:
                pubsub.close()


class _NoResp3Error(Exception):
    """The server refused HELLO 3 (Redis before 6): wait the RESP2 way."""


def _newer(current: ResultRecord | None, record: ResultRecord) -> ResultRecord:
    """Of a record read and one received, the one to keep: a final state wins."""
    if current is None or record.state in celeriac_states.READY_STATES:
        return record
    return current


def _is_channel(name: Any, channel: bytes, key: str) -> bool:
    return bool(name == channel or _text(name) == key)


def _listen_resp3(
    connection: Connection, key: str, task_id: str, states: frozenset[str], deadline: float | None
) -> ResultRecord | None:
    """Wait on a subscribed RESP3 connection for a message saying one of ``states``.

    The key is read again every ``_RECHECK`` seconds, in case a reconnect lost a message;
    GETs still unanswered are read before returning, so the connection can be reused.
    """
    channel = key.encode()
    recheck = time.monotonic() + _RECHECK
    asked = 0
    result: ResultRecord | None = None
    while result is None:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if now >= recheck:
            connection.send_packed_command(connection.pack_command("GET", key))
            asked += 1
            recheck = now + _RECHECK
        wait = recheck - now if deadline is None else min(recheck, deadline) - now
        if not connection.can_read(timeout=max(wait, 0.0)):
            continue
        reply = connection.read_response(push_request=True)
        if isinstance(reply, list):
            if _text(reply[0]) != "message" or not _is_channel(reply[1], channel, key):
                continue
            reply = reply[2]
        else:
            asked -= 1
        if reply is not None:
            record = _decode(task_id, reply)
            if record.state in states:
                result = record
    while asked > 0:
        if not isinstance(connection.read_response(push_request=True), list):
            asked -= 1
    return result


def _confirmed(pubsub: PubSub, key: str) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
        if message is not None and message["type"] == "subscribe" and _text(message["channel"]) == key:
            return
    raise TimeoutError(f"Redis did not confirm the subscription to {key!r}")


def _listen(pubsub: PubSub, key: str, task_id: str, timeout: float) -> ResultRecord | None:
    """The next record published on ``key`` within ``timeout``; None when none came."""
    deadline = time.monotonic() + timeout
    while True:
        message = pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
        if message is None:
            if time.monotonic() >= deadline:
                return None
            continue
        if message["type"] == "message" and _text(message["channel"]) == key:
            return _decode(task_id, message["data"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _encode(record: ResultRecord) -> bytes:
    if record.content_type == JSON:
        return record.payload
    head = f"{record.content_type}\n{record.content_encoding}\n{record.state}\n".encode()
    return MAGIC + head + record.payload


def _decode(task_id: str, value: bytes) -> ResultRecord:
    if value.startswith(MAGIC):
        content_type, encoding, header_state, payload = value[len(MAGIC) :].split(b"\n", 3)
        return ResultRecord(
            task_id=task_id,
            state=header_state.decode(),
            payload=payload,
            content_type=content_type.decode(),
            content_encoding=encoding.decode(),
        )
    state: Any = None
    try:
        meta = json.loads(value)
        if isinstance(meta, dict):
            state = meta.get("status")
    except ValueError:
        pass
    return ResultRecord(
        task_id=task_id,
        state=state if isinstance(state, str) else celeriac_states.PENDING,
        payload=value,
        content_type=JSON,
    )
