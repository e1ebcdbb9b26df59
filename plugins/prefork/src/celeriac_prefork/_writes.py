"""Where the worker writes the final records its children carried (see ``_child``).

A child sends the record of a task it finished to the worker with its report, instead of
a round trip to the result store of its own for each task. The worker writes them on a
thread of its own, which takes every record carried since its last write and saves them in
one round trip (``BatchStore.store_many``: Redis, SQLite, SQL databases). Never on the
pool's supervisor thread, which reads the children's reports and enforces their time
limits: a store that hangs must not stop that.

The outcome's ``written`` is the write, and the worker acknowledges the message once it
finished: a write that failed or took longer than ``limit`` gives the message back (the
task runs again). A record the store refuses to keep (``SerializationError``: a value too
large for it) fails its task, as when the child writes it: the batch is written again one
record at a time, and a FAILURE naming the refusal is stored in place of each refused one.

Stores that send results as messages (``rpc://``) are not carried for: a task's STARTED
and progress replies leave from the child's connection, and its final one would leave from
the worker's, which RabbitMQ does not order after them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import final

from celeriac.plugin import BatchStore
from celeriac.plugin import ReplyQueue
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStore
from celeriac.plugin import SerializationError
from celeriac.plugin import finished_by

log = logging.getLogger("celeriac.worker")

#: Builds the FAILURE record stored in place of a record the store refused.
Refused = Callable[[ResultRecord, SerializationError], ResultRecord]


@final
class Batch:
    """Records written in one round trip: each one's :class:`~celeriac.plugin.PendingWrite`.
    Finished once written, failed, or ``limit`` seconds after it was opened."""

    __slots__ = ("_done", "_error", "deadline", "limit", "records")

    def __init__(self, limit: float) -> None:
        self.records: list[ResultRecord] = []
        self.limit = limit
        self.deadline = time.monotonic() + limit
        self._done = threading.Event()
        self._error: BaseException | None = None

    def finished(self, timeout: float = 0.0) -> bool:
        return finished_by(self._done, self.deadline, timeout)

    def wait(self) -> None:
        if not self._done.wait(max(0.0, self.deadline - time.monotonic())):
            raise TimeoutError(f"the result store did not take the record within {self.limit:g} s")
        if self._error is not None:
            raise self._error

    def end(self, error: BaseException | None) -> None:
        self._error = error
        self._done.set()


def failed_write(error: BaseException) -> Batch:
    """A write that failed before it started: the settler gives its message back and logs why."""
    batch = Batch(0.0)
    batch.end(error)
    return batch


def carries(store: ResultStore | None) -> bool:
    """Can children hand their records to the worker for ``store``?"""
    return isinstance(store, BatchStore) and not isinstance(store, ReplyQueue)


@final
class RecordWriter:
    """Writes carried records to ``store`` (one that :func:`carries`) on its own thread.

    :param refused: the FAILURE record to store instead of one the store refused.
    :param limit: seconds after which a write still under way counts as failed (its message
        goes back; the write may still land, and a stored SUCCESS survives the rerun).
    """

    def __init__(self, store: ResultStore, refused: Refused, limit: float) -> None:
        assert isinstance(store, BatchStore)
        self._store = store
        self._store_many = store.store_many
        self._refused = refused
        self._limit = limit
        self._cond = threading.Condition()
        self._open: Batch | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def write(self, record: ResultRecord) -> Batch:
        """Put ``record`` into the batch the thread writes next and return that batch.
        Raises when it cannot be handed over (the writer is closed, or no thread starts)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is stopping; its result writer is closed")
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="celeriac-prefork-results", daemon=True)
                thread.start()  # first: a thread that cannot start leaves no batch behind
                self._thread = thread
            batch = self._open
            if batch is None:
                batch = self._open = Batch(self._limit)
                self._cond.notify()
            batch.records.append(record)
            return batch

    def close(self, timeout: float) -> None:
        """Write what was handed over (waiting up to ``timeout``), then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._open is None and not self._closed:
                    self._cond.wait()
                batch, self._open = self._open, None
                if batch is None:
                    return  # closed, everything written
            try:
                self._save(batch.records)
            except BaseException as exc:  # told to the settler, which gives the messages back
                batch.end(exc)
            else:
                batch.end(None)

    def _save(self, records: Sequence[ResultRecord]) -> None:
        try:
            self._store_many(records)
        except SerializationError:
            # One of them was refused: which one is found by writing them one at a time.
            for record in records:
                try:
                    self._store.store(record)
                except SerializationError as exc:
                    log.error(
                        "the result store refused the %s record of task %s (%s); storing FAILURE instead",
                        record.state,
                        record.task_id,
                        exc,
                    )
                    self._store.store(self._refused(record, exc))
