"""Where the worker writes the final records its children carried (see ``_child``).

A child sends the record of a task it finished to the worker with its report, instead of
a round trip to the result store of its own for each task. The worker writes them:

* to a store that takes records without waiting (``DeferredStore``, such as ``rpc://``),
  by handing each over;
* to a store that saves several records in one round trip (``BatchStore``: Redis, SQLite,
  SQL databases), on a thread of its own that takes every record carried since its last
  write and writes them together. When no other child is busy and nothing waits, the
  thread that read the report writes the record at once instead, so that a lone task's
  result is not delayed by a hand-off between threads.

Either way the outcome's ``written`` is the write, and the worker acknowledges the message
once it finished; a write that failed gives the message back (the task runs again).
"""

from __future__ import annotations

import threading
from typing import final

from celeriac.plugin import BatchStore
from celeriac.plugin import DeferredStore
from celeriac.plugin import PendingWrite
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStore


@final
class Batch:
    """Records written in one round trip: each one's :class:`~celeriac.plugin.PendingWrite`.

    It has no deadline of its own: the store's calls end (written or raising) within the
    store's own timeouts."""

    __slots__ = ("_done", "_error", "records")

    def __init__(self) -> None:
        self.records: list[ResultRecord] = []
        self._done = threading.Event()
        self._error: BaseException | None = None

    def finished(self, timeout: float = 0.0) -> bool:
        return self._done.is_set() or (timeout > 0 and self._done.wait(timeout))

    def wait(self) -> None:
        self._done.wait()
        if self._error is not None:
            raise self._error

    def end(self, error: BaseException | None) -> None:
        self._error = error
        self._done.set()


def carries(store: ResultStore | None) -> bool:
    """Can children hand their records to the worker for ``store``?"""
    return isinstance(store, (DeferredStore, BatchStore))


@final
class RecordWriter:
    """Writes carried records to ``store`` (one that :func:`carries`)."""

    def __init__(self, store: ResultStore) -> None:
        self._store = store
        self._deferred = store if isinstance(store, DeferredStore) else None
        self._cond = threading.Condition()
        self._open: Batch | None = None
        self._busy = False  # the thread is writing a batch
        self._thread: threading.Thread | None = None
        self._closed = False

    def write(self, record: ResultRecord, *, alone: bool) -> PendingWrite | None:
        """Write ``record``: at once (None is returned) when ``alone`` (nothing else running)
        and no batch is under way, else through a batch (returned). Raises when the record
        was not written or cannot be handed over."""
        if self._deferred is not None:
            return self._deferred.store_deferred(record)
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is stopping; its result writer is closed")
            at_once = alone and not self._busy and self._open is None
            if not at_once:
                batch = self._open
                if batch is None:
                    batch = self._open = Batch()
                    self._start()
                    self._cond.notify()
                batch.records.append(record)
                return batch
        self._store.store(record)
        return None

    def close(self, timeout: float) -> None:
        """Write what was handed over (waiting up to ``timeout``), then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _start(self) -> None:
        """Start the thread on the first batch (lock held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="celeriac-prefork-results", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        store = self._store
        assert isinstance(store, BatchStore)
        while True:
            with self._cond:
                self._busy = False
                while self._open is None and not self._closed:
                    self._cond.wait()
                batch, self._open = self._open, None
                if batch is None:
                    return  # closed, everything written
                self._busy = True
            try:
                store.store_many(batch.records)
            except BaseException as exc:  # told to the settler, which gives the messages back
                batch.end(exc)
            else:
                batch.end(None)
