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
from celeriac_prefork._writes import Batch
from celeriac_prefork._writes import RecordWriter
from celeriac_prefork._writes import carries


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

    def store(self, record: ResultRecord) -> None:
        self.inner.store(record)

    def store_many(self, records: Sequence[ResultRecord]) -> None:
        self.sizes.append(len(records))
        self.writing.set()
        assert self.go_on.wait(10)
        if self.error is not None:
            raise self.error
        for record in records:
            self.inner.store(record)

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


def writer_for(held: Held) -> RecordWriter:
    assert carries(held)  # type: ignore[arg-type]  # a ResultStore with store_many
    return RecordWriter(held)  # type: ignore[arg-type]


def test_a_lone_record_is_written_at_once_by_the_caller(app: Celeriac, held: Held) -> None:
    writer = writer_for(held)
    assert writer.write(record(app, 1), alone=True) is None
    assert held.get("t1") is not None
    assert held.sizes == []  # no batch, no thread
    writer.close(5)


def test_records_handed_over_while_a_batch_is_written_go_together_in_the_next(
    app: Celeriac, held: Held
) -> None:
    writer = writer_for(held)
    held.go_on.clear()
    first = writer.write(record(app, 0), alone=False)
    assert isinstance(first, Batch)
    assert held.writing.wait(5)
    # A batch is under way: even a lone record waits for the next one, with the others.
    later = [writer.write(record(app, n), alone=n == 3) for n in range(1, 5)]
    assert len({id(batch) for batch in later}) == 1
    assert not first.finished() and held.get("t1") is None
    held.go_on.set()
    for batch in [first, *later]:
        assert batch is not None and batch.finished(5)
        batch.wait()
    assert held.sizes == [1, 4]
    assert all(held.get(f"t{n}") is not None for n in range(5))
    writer.close(5)


def test_a_failed_batch_tells_every_record_in_it_why(app: Celeriac, held: Held) -> None:
    writer = writer_for(held)
    held.error = ConnectionError("the store went away")
    batches = [writer.write(record(app, n), alone=False) for n in range(3)]
    for batch in batches:
        assert batch is not None and batch.finished(5)
        with pytest.raises(ConnectionError, match="went away"):
            batch.wait()
    held.error = None
    assert writer.write(record(app, 9), alone=False) is not None  # the writer goes on
    writer.close(5)
    assert held.get("t9") is not None


def test_close_writes_what_was_handed_over_then_refuses(app: Celeriac, held: Held) -> None:
    writer = writer_for(held)
    held.go_on.clear()
    batches = [writer.write(record(app, n), alone=False) for n in range(3)]
    assert held.writing.wait(5)
    threading.Timer(0.05, held.go_on.set).start()
    writer.close(5)
    assert all(batch is not None and batch.finished() for batch in batches)
    assert all(held.get(f"t{n}") is not None for n in range(3))
    with pytest.raises(RuntimeError, match="writer is closed"):
        writer.write(record(app, 7), alone=False)


def test_a_store_without_batches_is_not_carried_for() -> None:
    class OneByOne:
        def store(self, record: ResultRecord) -> None: ...

    assert not carries(OneByOne())  # type: ignore[arg-type]
