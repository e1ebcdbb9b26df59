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
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac import states as celeriac_states
from celeriac.config import Config
from celeriac.protocols import ResultRecord
from celeriac_redis._client import command
from celeriac_redis._client import make_client
from celeriac_redis._client import pubsub as make_pubsub
from celeriac_redis._config import RedisConfig

if TYPE_CHECKING:
    from redis.client import PubSub

JSON = "application/json"
#: Starts a payload that is not JSON: then content type, encoding and state, one line each.
MAGIC = b"\x01celeriac-result\n"
#: Seconds between two reads of the key while waiting, in case a message was missed
#: (pub/sub delivers at most once: a reconnect loses what was published meanwhile).
_RECHECK = 2.0
_MGET_CHUNK = 1000

# SUCCESS is final: a duplicate run after a redelivery must not undo it. The state is read
# from the stored value itself: JSON's "status" field (cjson), or the header line otherwise.
_STORE = r"""
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
"""


@final
class RedisResultStore:
    """Task results under Celery's keys, with expiry, pub/sub wake-ups and MGET for groups.

    :param url: ``redis://host:port/db``; may be the broker's.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("redis", RedisConfig)
        self._client = make_client(url, settings)
        self._prefix = f"{settings.result_key_prefix}celery-task-meta-"
        self._expires_ms = int(config.result_expires * 1000) if config.result_expires > 0 else 0
        self._store = self._client.register_script(_STORE)
        self._idle: list[PubSub] = []  # pub/sub connections kept for the next waiter
        self._lock = threading.Lock()

    def key(self, task_id: str) -> str:
        return self._prefix + task_id

    def store(self, record: ResultRecord) -> None:
        """Save and publish the state, unless a SUCCESS is stored already (one script run)."""
        value = _encode(record)
        self._store(keys=[self.key(record.task_id)], args=[value, self._expires_ms, MAGIC])

    def get(self, task_id: str) -> ResultRecord | None:
        value: bytes | None = command(self._client, "GET", self.key(task_id))
        return None if value is None else _decode(task_id, value)

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        """Records in the order asked: one MGET per thousand ids."""
        records: list[ResultRecord | None] = []
        for start in range(0, len(task_ids), _MGET_CHUNK):
            chunk = task_ids[start : start + _MGET_CHUNK]
            values: list[bytes | None] = command(
                self._client, "MGET", *[self.key(task_id) for task_id in chunk]
            )
            records.extend(
                None if value is None else _decode(task_id, value)
                for task_id, value in zip(chunk, values, strict=True)
            )
        return records

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Subscribe to the key's channel, then read the key, then sleep until a message says done.

        Subscribing before the first read means a result stored in between is either read
        or received: never missed.
        """
        key = self.key(task_id)
        deadline = None if timeout is None else time.monotonic() + timeout
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

    def forget(self, task_id: str) -> None:
        self._client.delete(self.key(task_id))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for pubsub in idle:
            pubsub.close()
        self._client.close()

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
