"""Test support for key-value result stores: an in-memory :class:`~celeriac._contract.kvstore.KeyValue`
and :func:`check_key_value`, the contract every implementation must pass.

Both are exported by :mod:`celeriac.testing`. A store plugin runs the contract against its
real server in its own tests::

    def test_contract(kv):
        check_key_value(kv)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import final

from celeriac._contract.kvstore import KeyValue


@final
class MemoryKeyValue:
    """A :class:`~celeriac._contract.kvstore.KeyValue` in a dict of one process, with expiry."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._sets: dict[str, tuple[set[str], float | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._values.get(key)
            return found[0] if found is not None and _alive(found[1]) else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: bytes, expires: float | None) -> None:
        with self._lock:
            self._values[key] = (bytes(value), _deadline(expires))

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._sets.pop(key, None)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        with self._lock:
            found = self._sets.get(key)
            members = found[0] if found is not None and _alive(found[1]) else set()
            self._sets[key] = (members, _deadline(expires))
            if member in members:
                return 0
            members.add(member)
            return len(members)

    def sweep(self) -> int:
        with self._lock:
            dead = [key for key, (_, until) in self._values.items() if not _alive(until)]
            dead_sets = [key for key, (_, until) in self._sets.items() if not _alive(until)]
            for key in dead:
                del self._values[key]
            for key in dead_sets:
                del self._sets[key]
            return len(dead) + len(dead_sets)

    def close(self) -> None:
        """Nothing to release."""


def _deadline(expires: float | None) -> float | None:
    return None if expires is None else time.time() + expires


def _alive(deadline: float | None) -> bool:
    return deadline is None or deadline > time.time()


def check_key_value(kv: KeyValue, *, prefix: str | None = None, expiry_timeout: float = 10.0) -> None:
    """Assert that ``kv`` keeps the :class:`~celeriac._contract.kvstore.KeyValue` contract.

    Writes only keys starting with ``prefix`` (a fresh random one by default) and deletes
    them at the end. Takes a little over a second: expiry is checked with a one-second entry
    (memcached counts whole seconds), polled until gone, at most ``expiry_timeout`` seconds.
    """
    p = prefix if prefix is not None else f"kvcheck-{uuid.uuid4().hex[:12]}-"
    assert isinstance(kv, KeyValue), f"{type(kv).__name__} lacks methods of KeyValue"
    written = [f"{p}a", f"{p}b", f"{p}missing", f"{p}set", f"{p}race", f"{p}brief", f"{p}bytes"]
    try:
        assert kv.get(f"{p}missing") is None
        kv.set(f"{p}a", b"one", None)
        kv.set(f"{p}b", b'{"status": "SUCCESS"}', 3600.0)
        assert kv.get(f"{p}a") == b"one"
        kv.set(f"{p}a", b"two", None)
        assert kv.get(f"{p}a") == b"two", "set must replace the value"
        every_byte = bytes(range(256)) * 4
        kv.set(f"{p}bytes", every_byte, 3600.0)
        assert kv.get(f"{p}bytes") == every_byte, "values are bytes, kept exactly"
        got = kv.get_many([f"{p}b", f"{p}missing", f"{p}a"])
        assert got == [b'{"status": "SUCCESS"}', None, b"two"], got
        assert kv.get_many([]) == []
        kv.delete(f"{p}a")
        kv.delete(f"{p}a")  # absent: no error
        assert kv.get(f"{p}a") is None

        # Chord parts: idempotent per member, counted once each.
        assert kv.add_member(f"{p}set", "t1", 3600.0) == 1
        assert kv.add_member(f"{p}set", "t2", 3600.0) == 2
        assert kv.add_member(f"{p}set", "t1", 3600.0) == 0, "a member added again counts 0"
        assert kv.add_member(f"{p}set", "t3", 3600.0) == 3
        # Concurrent adds of different members see different counts: one sees the total.
        members = [f"m{n}" for n in range(64)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            counts = sorted(pool.map(lambda m: kv.add_member(f"{p}race", m, 3600.0), members))
        assert counts == list(range(1, 65)), f"add_member is not atomic: counts {counts}"
        with ThreadPoolExecutor(max_workers=8) as pool:
            again = list(pool.map(lambda m: kv.add_member(f"{p}race", m, 3600.0), members))
        assert again == [0] * 64, "members added again must count 0"

        # Expiry: a one-second entry is gone after it, from get, get_many and (swept) the store.
        kv.set(f"{p}brief", b"brief", 1.0)
        assert kv.get(f"{p}brief") == b"brief"
        deadline = time.monotonic() + expiry_timeout
        while kv.get(f"{p}brief") is not None:
            assert time.monotonic() < deadline, (
                f"an entry set to expire in 1 s still there after {expiry_timeout} s"
            )
            time.sleep(0.05)
        assert kv.get_many([f"{p}brief"]) == [None]
        assert kv.sweep() >= 0
        assert kv.get(f"{p}brief") is None
        assert kv.get(f"{p}b") == b'{"status": "SUCCESS"}', "the sweep must keep what has not expired"
    finally:
        for key in written:
            kv.delete(key)
