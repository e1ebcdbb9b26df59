"""Series for the graphs page: throughput by state and by task, runtime percentiles, queue lengths.

Computed from the history on request (its counts are pre-bucketed by ``BUCKET`` seconds),
shaped for uPlot: one shared list of times and one list of values per series.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from celeriac_dashboard._history import BUCKET
from celeriac_dashboard._history import History

#: Task names drawn separately in the by-task graph; the rest are summed as "other".
TOP_TASKS = 8
#: Width of a runtime-percentile bucket, in seconds: enough tasks per point to mean something.
RUNTIME_BUCKET = 60
PERCENTILES = (50, 90, 99)


def graphs(history: History, now: float, minutes: int) -> dict[str, Any]:
    since = now - minutes * 60
    return {
        "bucket": BUCKET,
        "by_state": _by_state(history, since, now),
        "by_task": _by_task(history, since, now),
        "runtime": _runtime(history, since, now),
        "queues": _queues(history, since),
    }


def _axis(since: float, now: float, width: int) -> list[int]:
    start = int(since) // width * width
    return list(range(start, int(now) // width * width + 1, width))


def _series(counts: dict[str, dict[int, float]], axis: list[int]) -> dict[str, Any]:
    return {
        "x": axis,
        "series": {name: [values.get(t, 0) for t in axis] for name, values in sorted(counts.items())},
    }


def _by_state(history: History, since: float, now: float) -> dict[str, Any]:
    per: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for bucket, _, kind, n in history.counts(since):
        per[kind][bucket] += n / BUCKET
    return _series(per, _axis(since, now, BUCKET))


def _by_task(history: History, since: float, now: float) -> dict[str, Any]:
    per: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, int] = defaultdict(int)
    rows = [row for row in history.counts(since) if row[2] in ("succeeded", "failed")]
    for _, name, _, n in rows:
        totals[name] += n
    top = set(sorted(totals, key=lambda name: -totals[name])[:TOP_TASKS])
    for bucket, name, _, n in rows:
        per[name if name in top else "other"][bucket] += n / BUCKET
    return _series(per, _axis(since, now, BUCKET))


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


def _runtime(history: History, since: float, now: float) -> dict[str, Any]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, runtime in history.runtimes(since):
        buckets[int(at) // RUNTIME_BUCKET * RUNTIME_BUCKET].append(runtime)
    axis = _axis(since, now, RUNTIME_BUCKET)
    series: dict[str, list[float | None]] = {f"p{p}": [] for p in PERCENTILES}
    for t in axis:
        values = sorted(buckets.get(t, ()))
        for p in PERCENTILES:
            series[f"p{p}"].append(percentile(values, p) if values else None)
    return {"x": axis, "series": series}


def _queues(history: History, since: float) -> dict[str, Any]:
    samples = history.queue_samples(since)
    times = sorted({int(at) for at, _, _ in samples})
    index = {t: i for i, t in enumerate(times)}
    series: dict[str, list[int | None]] = {}
    for at, queue, length in samples:
        series.setdefault(queue, [None] * len(times))[index[int(at)]] = length
    return {"x": times, "series": dict(sorted(series.items()))}
