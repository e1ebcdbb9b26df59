"""The worker's writer of the records its children carry, on a real SQLite result store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import ResultRecord
from celeriac.plugin import ResultStore
from celeriac.plugin import SerializationError
from celeriac.plugin import ValueRefusedError
from celeriac_prefork._writes import Batch
from celeriac_prefork._writes import RecordWriter
from celeriac_prefork._writes import carries
from celeriac_prefork._writes import failed_write


class Held:
    """The app's SQLite store, whose ``store_many`` calls are counted and can be held up or
    made to fail, to see what the writer does while a batch is under way."""

    def __init__(self, store: ResultStore) -> None:
        self.inner = store
        self.sizes: list[int] = []
        self.writing = threading.Event()
        self.go_on = threading.Event()
        self.go_on.set()
        self.error: Exception | None = None
        self.refuse: set[str] = set()  # SUCCESS records of these tasks are too large

    def store(self, record: ResultRecord) -> None:
        if record.task_id in self.refuse and record.state == states.SUCCESS:
            raise ValueRefusedError(f"{record.task_id}: too large for this store")
        self.inner.store(record)

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        self.sizes.append(len(records))
        self.writing.set()
        assert self.go_on.wait(10)
        if self.error is not None:
            raise self.error
        for record in records:
            self.store(record)

    def get(self, task_id: str) -> ResultRecord | None:
        return self.inner.get(task_id)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Celeriac]:
    app = Celeriac("writes", broker=f"sqlite:///{tmp_path / 'db.sqlite3'}", config=False, env={})
    yield app
    app.close()


@pytest.fixture
def held(app: Celeriac) -> Held:
    return Held(app.result_store)


def record(app: Celeriac, n: int) -> ResultRecord:
    return app.results.encode(f"t{n}", states.SUCCESS, n, None)


def writer_for(held: Held, app: Celeriac, limit: float = 30.0) -> RecordWriter:
    assert carries(held)  # type: ignore[arg-type]  # a ResultStore with store_many

    def refused(record: ResultRecord, error: SerializationError) -> ResultRecord:
        return app.results.encode(record.task_id, states.FAILURE, error, "refused")

    return RecordWriter(held, refused, limit)  # type: ignore[arg-type]


def test_a_record_is_written_by_the_writer_thread_not_the_caller(app: Celeriac, held: Held) -> None:
    """The caller is the pool's supervisor, which must not wait for a store that hangs."""
    writer = writer_for(held, app)
    held.go_on.clear()
    batch = writer.write(record(app, 1))  # returns although the store holds the write up
    assert held.writing.wait(5)
    assert not batch.finished() and held.get("t1") is None
    held.go_on.set()
    assert batch.finished(5)
    batch.wait()
    assert held.get("t1") is not None and held.sizes == [1]
    writer.close(5)


def test_records_handed_over_while_a_batch_is_written_go_together_in_the_next(
    app: Celeriac, held: Held
) -> None:
    writer = writer_for(held, app)
    held.go_on.clear()
    first = writer.write(record(app, 0))
    assert isinstance(first, Batch)
    assert held.writing.wait(5)
    later = [writer.write(record(app, n)) for n in range(1, 5)]
    assert len({id(batch) for batch in later}) == 1
    assert not first.finished() and held.get("t1") is None
    held.go_on.set()
    for batch in [first, *later]:
        assert batch.finished(5)
        batch.wait()
    assert held.sizes == [1, 4]
    assert all(held.get(f"t{n}") is not None for n in range(5))
    writer.close(5)


def test_a_failed_batch_tells_every_record_in_it_why(app: Celeriac, held: Held) -> None:
    writer = writer_for(held, app)
    held.error = ConnectionError("the store went away")
    batches = [writer.write(record(app, n)) for n in range(3)]
    for batch in batches:
        assert batch.finished(5)
        with pytest.raises(ConnectionError, match="went away"):
            batch.wait()
    held.error = None
    assert writer.write(record(app, 9)).finished(5)  # the writer goes on
    writer.close(5)
    assert held.get("t9") is not None


def test_close_writes_what_was_handed_over_then_refuses(app: Celeriac, held: Held) -> None:
    writer = writer_for(held, app)
    held.go_on.clear()
    batches = [writer.write(record(app, n)) for n in range(3)]
    assert held.writing.wait(5)
    closing = threading.Thread(target=writer.close, args=(10,))
    closing.start()
    assert closing.is_alive()  # waiting for the write under way
    held.go_on.set()
    closing.join(10)
    assert not closing.is_alive()
    assert all(batch.finished() for batch in batches)
    assert all(held.get(f"t{n}") is not None for n in range(3))
    with pytest.raises(RuntimeError, match="writer is closed"):
        writer.write(record(app, 7))


def test_a_refused_record_fails_its_task_and_the_rest_of_its_batch_is_written(
    app: Celeriac, held: Held
) -> None:
    """As when a child writes its own record: a value the store refuses (too large) fails
    the task with a stored FAILURE instead of the message coming back to run again."""
    writer = writer_for(held, app)
    held.refuse.add("t1")
    held.go_on.clear()
    first = writer.write(record(app, 0))
    assert held.writing.wait(5)
    batch = [writer.write(record(app, n)) for n in range(1, 4)]
    held.go_on.set()
    for each in [first, *batch]:
        assert each.finished(5)
        each.wait()  # written: the messages are acknowledged
    stored = {n: held.get(f"t{n}") for n in range(4)}
    assert {n: each.state for n, each in stored.items() if each is not None} == {
        0: states.SUCCESS,
        1: states.FAILURE,
        2: states.SUCCESS,
        3: states.SUCCESS,
    }
    assert app.AsyncResult("t1").state == states.FAILURE
    writer.close(5)


def test_a_write_that_takes_too_long_counts_as_failed(app: Celeriac, held: Held) -> None:
    """A held message's lease is not renewed: past the limit its message goes back."""
    writer = writer_for(held, app, limit=0.2)
    held.go_on.clear()
    batch = writer.write(record(app, 1))
    assert batch.finished(5)  # the limit, not the write, ended it
    with pytest.raises(TimeoutError, match=r"within 0.2 s"):
        batch.wait()
    held.go_on.set()
    writer.close(5)


def test_stores_without_batches_or_replying_by_message_are_not_carried_for(app: Celeriac) -> None:
    class OneByOne:
        def store(self, record: ResultRecord) -> None: ...

    class Replies(OneByOne):
        def store_many(self, records: Sequence[ResultRecord]) -> None: ...

        def reply_queue(self) -> str:
            return "replies"

    assert not carries(OneByOne())  # type: ignore[arg-type]
    assert not carries(Replies())  # type: ignore[arg-type]
    assert carries(app.result_store)  # SQLite saves many in one transaction


def test_a_record_that_could_not_be_handed_over_is_a_failed_write(app: Celeriac, held: Held) -> None:
    """The pool settles it as any failed write: the message goes back, the settler says why."""
    writer = writer_for(held, app)
    writer.close(5)
    with pytest.raises(RuntimeError, match="writer is closed") as raised:
        writer.write(record(app, 1))
    write = failed_write(raised.value)
    assert write.finished()
    with pytest.raises(RuntimeError, match="writer is closed"):
        write.wait()
