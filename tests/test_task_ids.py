"""Task ids drawn from a buffer of random bytes (``celeriac._client.ids``): version 4 UUIDs,
never repeated across threads or into a forked process."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from celeriac import Celeriac
from celeriac._client.ids import TaskIds
from celeriac.testing import in_forked_child


def test_ids_are_version_4_uuids_and_do_not_repeat() -> None:
    ids = TaskIds()
    made = [ids.new() for _ in range(2000)]  # several refills
    assert len(set(made)) == len(made)
    assert {uuid.UUID(each).version for each in made} == {4}
    assert {uuid.UUID(each).variant for each in made} == {uuid.RFC_4122}


def test_threads_taking_ids_at_once_never_get_the_same_one() -> None:
    ids = TaskIds()
    taken: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def take(into: list[str]) -> None:
        start.wait()
        into.extend(ids.new() for _ in range(3000))

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [each for into in taken for each in into]
    assert len(every) == len(set(every)) == 24000


def test_a_forked_process_does_not_send_the_ids_its_parent_will(tmp_path: Path) -> None:
    app = Celeriac("ids", broker="memory://", config=False, env={})
    app.task(name="t.noop")(lambda: None)
    first = app.send_task("t.noop").id  # the buffer is filled here
    seen = tmp_path / "child"

    def child() -> None:
        seen.write_text("\n".join(app.send_task("t.noop").id for _ in range(10)))

    assert in_forked_child(child) == 0
    parents = {app.send_task("t.noop").id for _ in range(300)}
    assert first not in parents
    assert not parents & set(seen.read_text().split())
    app.close()
