"""Single-process throughput of the SQLite transport: batched publish, then fetch+ack.

Run: ``python benchmarks/sqlite_transport.py [count] [batch]``; uses a temporary file.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from celeriac.plugin import Config
from celeriac.plugin import Envelope
from celeriac_sqlite import SqliteConfig
from celeriac_sqlite import SqliteTransport


def measure(count: int, batch: int, synchronous: Literal["NORMAL", "FULL"]) -> None:
    config = Config(sections={"sqlite": SqliteConfig(synchronous=synchronous)})
    headers = {"task": "proj.tasks.add", "id": "0" * 36, "retries": 0, "eta": None}
    envelope = Envelope(body=b"[[2, 2], {}, {}]", content_type="application/json", headers=headers)
    with tempfile.TemporaryDirectory() as tmp:
        transport = SqliteTransport(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", config)
        started = time.perf_counter()
        for _ in range(count // batch):
            transport.publish("bench", [envelope] * batch)
        published = time.perf_counter() - started
        started = time.perf_counter()
        received = 0
        while received < count:
            deliveries = transport.fetch(["bench"], limit=batch, timeout=1.0)
            transport.ack(deliveries)
            received += len(deliveries)
        consumed = time.perf_counter() - started
        transport.close()
    print(
        f"synchronous={synchronous}: publish {count / published:,.0f} msg/s, "
        f"fetch+ack {count / consumed:,.0f} msg/s ({count} messages, batches of {batch})"
    )


if __name__ == "__main__":
    count, batch = (int(arg) for arg in [*sys.argv[1:], "10000", "100"][:2])
    measure(count, batch, "NORMAL")
    measure(count, batch, "FULL")
