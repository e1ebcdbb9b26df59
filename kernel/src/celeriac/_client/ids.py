"""Task ids: random (version 4) UUIDs, as ``uuid.uuid4()`` makes them, drawn from a buffer.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom`` for every id, and CPython lets go of
the interpreter lock around that system call. A producer with an I/O thread beside it (the
RabbitMQ transport's) then handed the lock over for every message and waited to get it
back: with the sampling profiler, a fifth of a ``delay()`` loop's time was spent on that
line. Here 256 ids' worth of random bytes is read at once. The ids are as random as
``uuid4()``'s, and unique across threads; a forked process drops the ids it inherited, so
that it never sends one its parent sends too.
"""

from __future__ import annotations

import os
from typing import final

from celeriac._contract.fork import after_fork

_BATCH = 256


@final
class TaskIds:
    """Hands out task ids; one per app."""

    def __init__(self) -> None:
        self._ready: list[str] = []
        after_fork(self, TaskIds._forget)

    def new(self) -> str:
        try:
            return self._ready.pop()  # atomic: two threads never get the same id
        except IndexError:
            ready = _batch()
            mine = ready.pop()
            self._ready = ready  # a thread that refilled meanwhile loses its batch: no id repeats
            return mine

    def _forget(self) -> None:
        self._ready = []


def _batch() -> list[str]:
    """``_BATCH`` ids from one read of random bytes, formatted as ``str(uuid.uuid4())`` is
    (the version and variant bits set as ``uuid.UUID(..., version=4)`` sets them)."""
    raw = bytearray(os.urandom(16 * _BATCH))
    for start in range(0, len(raw), 16):
        raw[start + 6] = (raw[start + 6] & 0x0F) | 0x40  # version 4
        raw[start + 8] = (raw[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return [
        "-".join(
            (
                text[i : i + 8],
                text[i + 8 : i + 12],
                text[i + 12 : i + 16],
                text[i + 16 : i + 20],
                text[i + 20 : i + 32],
            )
        )
        for i in range(0, len(text), 32)
    ]
