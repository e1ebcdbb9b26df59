"""Time dumps+loads of a typical protocol 2 task body with each backend.

Run: ``python plugins/json/benchmarks/bench_json.py``. Prints the median of 5 runs per backend,
in microseconds per dumps+loads pair.
"""

from __future__ import annotations

import statistics
import timeit
from datetime import UTC
from datetime import datetime
from typing import Any

from celeriac_json import Backend
from celeriac_json import JsonSerializer

NUMBER = 5_000
RUNS = 5


EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
WHEN = datetime(2024, 5, 17, 13, 45, 30, 123456, tzinfo=UTC)


def task_body() -> list[Any]:
    """A protocol 2 body: (args, kwargs, embed), with a datetime among the arguments."""
    args = (42, "user@example.com", WHEN)
    kwargs = {"retries": 3, "tags": ["billing", "eu"], "amount": 19.99}
    return [args, kwargs, EMBED]


def plain_body() -> list[Any]:
    """The same body without a tagged type."""
    args = (42, "user@example.com", "2024-05-17T13:45:30.123456+00:00")
    kwargs = {"retries": 3, "tags": ["billing", "eu"], "amount": 19.99}
    return [args, kwargs, EMBED]


def bulk_body() -> list[Any]:
    """A body carrying 100 records, each with a datetime (about 11 KB of JSON)."""
    records = [
        {"id": i, "name": f"user-{i}", "email": f"user-{i}@example.com", "score": i / 7, "seen": WHEN}
        for i in range(100)
    ]
    return [(records,), {}, EMBED]


def measure(backend: Backend, body: Any) -> tuple[float, float, float]:
    """Return the median microseconds of dumps, loads and the pair."""
    serializer = JsonSerializer(backend=backend)
    data = serializer.dumps(body)

    def median(stmt: Any) -> float:
        runs = [timeit.timeit(stmt, number=NUMBER) / NUMBER * 1e6 for _ in range(RUNS)]
        return statistics.median(runs)

    return (
        median(lambda: serializer.dumps(body)),
        median(lambda: serializer.loads(data)),
        median(lambda: serializer.loads(serializer.dumps(body))),
    )


def main() -> None:
    print(f"median of {RUNS} runs of {NUMBER} calls, µs per call")
    print(f"{'body':6} {'bytes':>6} {'backend':8} {'dumps':>8} {'loads':>8} {'both':>8}")
    for label, make in (("task", task_body), ("plain", plain_body), ("bulk", bulk_body)):
        body = make()
        size = len(JsonSerializer(backend="stdlib").dumps(body))
        for backend in ("stdlib", "orjson"):
            dumps, loads, both = measure(backend, body)
            print(f"{label:6} {size:6} {backend:8} {dumps:8.2f} {loads:8.2f} {both:8.2f}")


if __name__ == "__main__":
    main()
