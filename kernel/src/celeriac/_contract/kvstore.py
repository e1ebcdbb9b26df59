"""A result store built on a small key-value interface, so that a new store is a short module.

A plugin implements :class:`KeyValue` (get, get many, set with expiry, delete, an atomic
set-add that counts chord parts, a sweep of expired entries) for its technology, and
offers ``KeyValueResultStore(its_key_value, config)`` as its result store. The base does the
rest the same way for every store:

- keys are Celery's (``celery-task-meta-<task id>``) and a JSON result is stored byte for
  byte as Celery's key-value backends store it; other content types get a short header
  naming their content type and state (a layout only celeriac reads);
- a stored SUCCESS is never replaced (read before write, as Celery's key-value backends do);
- every entry expires after ``result_expires`` seconds (none when it is 0 or less), and the
  sweep of expired entries runs at most every ``sweep_interval`` seconds from a writer;
- chords are counted with :meth:`KeyValue.add_member` of each header task's id, so a part
  delivered twice counts once (:class:`~celeriac._contract.protocols.ChordCounter`);
- ``wait`` polls, from a few milliseconds up to ``poll_cap`` seconds between reads.

A value the store cannot keep (too large for it) raises :class:`ValueRefusedError`, which
fails the task with that reason instead of sending its message round again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Protocol
from typing import final
from typing import runtime_checkable

from celeriac._model.errors import CeleriacError
from celeriac._model.errors import SerializationError
from celeriac._model.records import ResultRecord
from celeriac._model.redaction import redact_url
from celeriac._model.states import PENDING
from celeriac._model.states import SUCCESS

if TYPE_CHECKING:
    from celeriac._model.config import Config

log = logging.getLogger("celeriac._contract.kvstore")

JSON = "application/json"
#: Starts a stored value that is not JSON: then content type, encoding and state, a line each.
MAGIC = b"\x01celeriac-result\n"
#: Celery's key of a task's result (``KeyValueStoreBackend.task_keyprefix``).
TASK_KEY_PREFIX = "celery-task-meta-"
#: The set of a chord's finished header tasks (celeriac's own: Celery counts with INCR).
CHORD_KEY_PREFIX = "celeriac-chord-parts-"


@runtime_checkable
class KeyValue(Protocol):
    """What a key-value result store implements; :class:`KeyValueResultStore` does the rest.

    Keys are short ASCII strings (at most 250 bytes with the prefix, no spaces), values are
    bytes. ``expires`` is in seconds from now; ``None`` keeps the entry until it is deleted.
    An entry past its expiry must not be returned by ``get`` or ``get_many``, even before a
    sweep removed it. Methods may be called from several threads of one process, and from
    several processes (and hosts, for a server) at once.
    """

    def get(self, key: str) -> bytes | None:
        """The value at ``key``; None when there is none (or it expired)."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys`` in the order asked, in as few round trips as the store allows."""

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        """Store ``value`` at ``key``, replacing what was there.

        Raise :class:`ValueRefusedError` for a value the store cannot keep (too large): the
        task then fails with that reason. Never keep part of a value.
        """

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it is absent."""

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        """Add ``member`` to the set at ``key``, atomically; set ``key``'s expiry.

        :returns: the number of members after this call, when this call added ``member``;
            0 when it was a member already. Of concurrent calls adding different members,
            each sees a different count, so exactly one sees the final size.
        """

    def sweep(self) -> int:
        """Delete the entries that have expired and return how many; a store whose server
        expires entries itself returns 0."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


class ValueRefusedError(SerializationError):
    """The store cannot keep this value (for example it is larger than its item size).

    A subclass of :class:`~celeriac._model.errors.SerializationError`: the worker fails the task
    with this reason, as for a value the result serializer cannot encode.
    """


class StoreUnreachableError(CeleriacError):
    """The store's server cannot be reached; the message names its URL with the password masked."""

    def __init__(self, url: str, reason: object) -> None:
        self.url = redact_url(url)
        super().__init__(f"cannot reach the result store {self.url}: {reason}")


@final
class KeyValueResultStore:
    """A :class:`~celeriac._contract.protocols.ResultStore` and
    :class:`~celeriac._contract.protocols.ChordCounter` over any :class:`KeyValue`.

    :param kv: the store's key-value implementation.
    :param config: the app's config: ``result_expires`` is read from it.
    :param key_prefix: put before every key (Celery's ``result_backend_transport_options``
        ``global_keyprefix`` is the same idea), so stores can share a namespace.
    :param poll_first: seconds between the first two reads of ``wait``; doubling to ...
    :param poll_cap: ... at most this.
    :param sweep_interval: least seconds between two sweeps of expired entries by this object.
    """

    def __init__(
        self,
        kv: KeyValue,
        config: Config,
        *,
        key_prefix: str = "",
        poll_first: float = 0.002,
        poll_cap: float = 0.1,
        sweep_interval: float = 60.0,
    ) -> None:
        self.kv = kv
        self._expires = config.result_expires if config.result_expires > 0 else None
        self._task_prefix = f"{key_prefix}{TASK_KEY_PREFIX}"
        self._chord_prefix = f"{key_prefix}{CHORD_KEY_PREFIX}"
        self._poll_first = poll_first
        self._poll_cap = poll_cap
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval
        self._sweeping = threading.Lock()

    def key(self, task_id: str) -> str:
        """The key of a task's result."""
        return self._task_prefix + task_id

    def store(self, record: ResultRecord) -> None:
        """Save the state, unless a SUCCESS is stored already."""
        key = self.key(record.task_id)
        current = self.kv.get(key)
        if current is not None and decode_value(record.task_id, current).state == SUCCESS:
            return
        self.kv.set(key, encode_value(record), self._expires)
        self._sweep_when_due()

    def get(self, task_id: str) -> ResultRecord | None:
        value = self.kv.get(self.key(task_id))
        return None if value is None else decode_value(task_id, value)

    def get_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        values = self.kv.get_many([self.key(task_id) for task_id in task_ids])
        return [
            None if value is None else decode_value(task_id, value)
            for task_id, value in zip(task_ids, values, strict=True)
        ]

    def wait(self, task_id: str, states: frozenset[str], timeout: float | None) -> ResultRecord | None:
        """Read until the task reaches one of ``states``; None when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self._poll_first
        while True:
            record = self.get(task_id)
            if record is not None and record.state in states:
                return record
            if deadline is None:
                time.sleep(delay)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                time.sleep(min(delay, remaining))
            delay = min(delay * 2, self._poll_cap)

    def forget(self, task_id: str) -> None:
        self.kv.delete(self.key(task_id))

    def chord_part_done(self, group_id: str, task_id: str, size: int, index: int | None = None) -> bool:
        """Count a finished header task once; True for the call that completes the chord."""
        if size <= 0:
            log.error("chord %s: its size is not in its body (sent by a Celery client?)", group_id)
            return False
        return self.kv.add_member(self._chord_prefix + group_id, task_id, self._expires) == size

    def sweep(self) -> int:
        """Delete expired entries now; returns how many the store deleted."""
        self._next_sweep = time.monotonic() + self._sweep_interval
        return self.kv.sweep()

    def _sweep_when_due(self) -> None:
        # One writer of this process sweeps at a time; the others carry on without waiting.
        if self._expires is None or time.monotonic() < self._next_sweep:
            return
        if not self._sweeping.acquire(blocking=False):
            return
        try:
            if time.monotonic() >= self._next_sweep:
                deleted = self.sweep()
                log.debug("swept %d expired result entries", deleted)
        except Exception:  # a failed sweep loses nothing: the next one catches up
            log.warning("sweeping expired results failed", exc_info=True)
        finally:
            self._sweeping.release()

    def close(self) -> None:
        self.kv.close()


def encode_value(record: ResultRecord) -> bytes:
    """The stored form of a record: a JSON payload as it is (Celery reads it), anything else
    after a header naming its content type, encoding and state."""
    if record.content_type == JSON:
        return record.payload
    head = f"{record.content_type}\n{record.content_encoding}\n{record.state}\n".encode()
    return MAGIC + head + record.payload


def decode_value(task_id: str, value: bytes) -> ResultRecord:
    """A record from its stored form (:func:`encode_value`, or what Celery stored)."""
    if value.startswith(MAGIC):
        content_type, encoding, state, payload = value[len(MAGIC) :].split(b"\n", 3)
        return ResultRecord(
            task_id=task_id,
            state=state.decode(),
            payload=payload,
            content_type=content_type.decode(),
            content_encoding=encoding.decode(),
        )
    status: object = None
    try:
        meta = json.loads(value)
    except ValueError:
        meta = None
    if isinstance(meta, dict):
        status = meta.get("status")
    return ResultRecord(
        task_id=task_id,
        state=status if isinstance(status, str) else PENDING,
        payload=value,
        content_type=JSON,
    )
