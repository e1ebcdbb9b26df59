"""The solo pool: one task at a time, inline in the consumer's thread."""

from __future__ import annotations

import itertools
import threading
import time
from importlib.metadata import entry_points

from celeriac import Celeriac
from celeriac import states
from celeriac import testing
from celeriac.plugin import Outcome
from celeriac.plugin import TaskMessage
from celeriac.plugin import TaskRequest
from celeriac.testing import worker_thread
from celeriac_solo import SoloPool


def test_runs_inline_in_the_submitting_thread() -> None:
    seen: list[int] = []

    def execute(req: TaskRequest) -> Outcome:
        seen.append(threading.get_ident())
        return Outcome(request=req, state=states.SUCCESS)

    pool = SoloPool(execute)
    outcomes: list[Outcome] = []
    pool.submit(
        TaskRequest(message=TaskMessage(id="a", task="x"), queue="q"), lambda _: None, outcomes.append
    )
    assert seen == [threading.get_ident()]
    assert outcomes[0].state == states.SUCCESS
    assert pool.limit == 1
    assert pool.cancel_pending() == []


def test_worker_never_overlaps_tasks() -> None:
    assert "solo" in {ep.name for ep in entry_points(group="celeriac.plugins")}
    app = Celeriac("t", broker="memory://", plugins=[testing], env={}, config=False)
    spans: list[tuple[float, float]] = []

    @app.task
    def work() -> None:
        start = time.monotonic()
        time.sleep(0.02)
        spans.append((start, time.monotonic()))

    with worker_thread(app, pool="solo"):
        for result in [work.delay() for _ in range(10)]:
            result.get(timeout=5)
    spans.sort()
    assert len(spans) == 10
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
