"""Does a dead webhook sink slow a worker? 5,000 tasks with events on: no sink vs a sink
whose endpoint refuses connections (127.0.0.1, a port nothing listens on).

    python plugins/webhooks/benchmarks/sink_overhead.py [tasks] [rounds]
"""

from __future__ import annotations

import logging
import socket
import statistics
import sys
import time
from typing import Any

from celeriac import Celeriac
from celeriac import testing
from celeriac.testing import worker_thread


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/events"


def run(tasks: int, **settings: Any) -> float:
    app = Celeriac("bench", broker="memory://", plugins=[testing], env={}, config=False, **settings)

    @app.task(name="bench.noop")
    def noop(number: int) -> int:
        return number

    try:
        with worker_thread(app, concurrency=4, send_events=True):
            started = time.perf_counter()
            handles = [noop.delay(n) for n in range(tasks)]
            for handle in handles:
                handle.get(timeout=60)
            return time.perf_counter() - started
    finally:
        app.close()


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    logging.basicConfig(level=logging.ERROR)
    dead = {"sinks": {"dead": {"url": _dead_url(), "interval": 0.05, "backoff": 0.05}}}
    off: list[float] = []
    on: list[float] = []
    for _ in range(rounds):
        off.append(run(tasks))
        on.append(run(tasks, webhooks=dead))
    print(
        f"{tasks} tasks, median of {rounds}: no sink {statistics.median(off):.3f} s, "
        f"dead sink {statistics.median(on):.3f} s ({statistics.median(on) / statistics.median(off):.2f}x)"
    )


if __name__ == "__main__":
    main()
