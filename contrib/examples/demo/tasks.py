"""Example tasks for the demo: start a worker with ``celeriac -A tasks worker``."""

from __future__ import annotations

import time

from celeriac import Celeriac
from celeriac import TaskCall

app = Celeriac("tasks")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def slow_square(x: int) -> int:
    time.sleep(0.05)
    return x * x


@app.task
def word_count(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@app.task
def divide(x: float, y: float) -> float:
    return x / y


@app.task(bind=True, max_retries=3, default_retry_delay=0.2)
def flaky(self: TaskCall, succeed_on: int) -> str:
    """Fails until its retry count reaches ``succeed_on``, to show retries."""
    assert self.request is not None
    if self.request.retries < succeed_on:
        raise self.retry(exc=ConnectionError("service unavailable"))
    return f"succeeded after {self.request.retries} retries"


@app.task
def tick() -> str:
    """Sent by beat on a schedule (see celeriac.toml); leaves a line in ticks.log."""
    stamp = time.strftime("%H:%M:%S")
    with open("ticks.log", "a", encoding="utf-8") as log:
        log.write(stamp + "\n")
    return stamp
