"""The one after-fork mechanism: what a forked child must drop before it uses anything.

A child made by ``fork()`` (a prefork pool's children, a user's own ``os.fork``) inherits
the parent's sockets, database connections, locks and threads, but must not use them: a
socket shared with the parent interleaves both processes' commands, a lock may be held by a
thread that does not exist in the child. Components register a reset with
:func:`after_fork`; the kernel calls every live one in the child, right after the fork, in
the order they were registered. A reset drops what it holds (it must not close a socket the
parent still uses) so that the next use opens afresh.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("celeriac.worker")


class _Resets:
    """The registered resets of this process. Process-wide by nature: fork is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[weakref.ref[Any], Callable[[Any], object]]] = []
        self._installed = False

    def add(self, owner: T, reset: Callable[[T], object]) -> None:
        with self._lock:
            self._entries = [(ref, fn) for ref, fn in self._entries if ref() is not None]
            if any(ref() is owner and fn is reset for ref, fn in self._entries):
                return
            self._entries.append((weakref.ref(owner), reset))
            if not self._installed:
                os.register_at_fork(after_in_child=self.run)
                self._installed = True

    def run(self) -> None:
        # The child has one thread: no other can be inside add() now, and the lock may have
        # been held by a parent thread at the fork, so it is replaced, not taken.
        self._lock = threading.Lock()
        for ref, reset in self._entries:
            owner = ref()
            if owner is None:
                continue
            try:
                reset(owner)
            except Exception:
                log.exception("resetting %r after fork failed", owner)


_RESETS = _Resets()


def after_fork(owner: T, reset: Callable[[T], object]) -> None:
    """In a child forked from this process, call ``reset(owner)`` while ``owner`` lives.

    ``owner`` is held weakly (``reset`` should be a plain function or an unbound method,
    ``Connection.forget``, so that it does not keep ``owner`` alive). Registering the same
    pair twice has no further effect. An exception from a reset is logged and the others run.
    """
    _RESETS.add(owner, reset)
