"""What the in-worker metrics sink costs per event: python sink_overhead.py [--tasks N] [--repeats R].

Feeds the sink what a worker sends for each task (task-received, task-started,
task-succeeded) and prints the time per event and per task, best and median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from celeriac_prometheus import DEFAULT_BUCKETS
from celeriac_prometheus import MetricsSink
from celeriac_prometheus import TaskMetrics


def events(tasks: int) -> list[dict[str, Any]]:
    stamp = {"hostname": "bench@host", "timestamp": time.time()}
    out: list[dict[str, Any]] = []
    for n in range(tasks):
        uuid = f"task-{n}"
        name = f"proj.task{n % 20}"
        out.append({"type": "task-received", "uuid": uuid, "name": name, "queue": "celery", **stamp})
        out.append({"type": "task-started", "uuid": uuid, **stamp})
        out.append({"type": "task-succeeded", "uuid": uuid, "runtime": 0.01, **stamp})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    stream = events(args.tasks)
    per_event: list[float] = []
    for _ in range(args.repeats):
        sink = MetricsSink(TaskMetrics(buckets=DEFAULT_BUCKETS))
        start = time.perf_counter()
        for event in stream:
            sink.send(event)
        per_event.append((time.perf_counter() - start) / len(stream))
    best, median = min(per_event), statistics.median(per_event)
    print(f"per event: best {best * 1e6:.2f} us, median {median * 1e6:.2f} us")
    print(f"per task (3 events): best {best * 3e6:.2f} us, median {median * 3e6:.2f} us")


if __name__ == "__main__":
    main()
