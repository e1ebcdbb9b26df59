"""celeriac's result stores against Celery's result backends, each pair on the same server.

``.venv/bin/python benchmarks/result_stores.py [--n 20000] [--stores postgresql,mariadb,memcached,filesystem]
[--repeats 1] [--json PATH]``

Method
------
For each store, each side stores N results (``SUCCESS`` with a small dict value, one call
each, in one thread), then reads them back one by one with its own ``AsyncResult(id).get()``,
then reads them all at once (celeriac: ``GroupResult.get()``, which reads 1,000 per round trip;
Celery: ``ResultSet.join_native()`` where the backend supports it, else ``ResultSet.join()``).
Values are checked. Reported: stores/s, reads/s, the all-at-once read in ms, and each ratio
arranged so that above 1 means celeriac is faster (Celery's time / celeriac's time).

The pairs, each side on a namespace of its own on the same server:

- **postgresql**: ``db+postgresql+psycopg://`` on the local PostgreSQL, a fresh database per
  side (dropped after). Celery's database backend opens a new connection per call in a
  process that has not forked (``SessionManager`` uses ``NullPool`` there) and pools them in
  forked ones, such as its prefork workers; it is measured as in a worker, pooled
  (``session_manager.forked = True``), the faster of the two.
- **mariadb**: the same on the local MariaDB with ``db+mysql+pymysql://``.
- **memcached**: a memcached of the benchmark's own (Debian's) on a free port; Celery's
  ``cache+memcached://`` backend on python-memcached.
- **filesystem**: a fresh directory per side on the same disk; Celery's ``file://`` backend.

The 1-minute load average at the start of each store's run is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STORES = ("postgresql", "mariadb", "memcached", "filesystem")
VALUE = {"status": "ok", "items": [1, 2, 3], "name": "result"}


@contextlib.contextmanager
def servers(store: str) -> Iterator[tuple[str, str]]:
    """The celeriac URL and the Celery URL of ``store``, each on a namespace of its own."""
    if store in ("postgresql", "mariadb"):
        from celeriac_sqlalchemy.testing import mariadb_url
        from celeriac_sqlalchemy.testing import postgres_url
        from celeriac_sqlalchemy.testing import private_database

        server = postgres_url() if store == "postgresql" else mariadb_url()
        with (
            private_database(server, name="bench_celeriac") as ours,
            private_database(server, name="bench_celery") as theirs,
        ):
            yield f"db+{ours}", f"db+{theirs}"
    elif store == "memcached":
        from celeriac_memcached.testing import memcached_server

        with memcached_server() as running:
            yield running.url, f"cache+memcached://127.0.0.1:{running.port}/"
    elif store == "filesystem":
        base = Path(tempfile.mkdtemp(prefix="celeriac-bench-results-"))
        (base / "celery").mkdir()
        try:
            yield f"file://{base}/celeriac", f"file://{base}/celery"
        finally:
            shutil.rmtree(base, ignore_errors=True)
    else:
        raise SystemExit(f"unknown store {store!r}; known: {', '.join(STORES)}")


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run_celeriac(url: str, n: int) -> dict[str, float]:
    from celeriac import Celeriac
    from celeriac import states
    from celeriac._client.result import GroupResult

    app = Celeriac("bench", broker="memory://", result_store=url, env={}, config=False)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    store = app.result_store
    store.store(app.results.encode("warm-up", states.SUCCESS, VALUE))  # connect, create tables

    def store_all() -> None:
        for task_id in ids:
            store.store(app.results.encode(task_id, states.SUCCESS, VALUE))

    def read_each() -> None:
        for task_id in ids:
            assert app.AsyncResult(task_id).get(timeout=10) == VALUE

    def read_all() -> None:
        assert GroupResult("bench", [app.AsyncResult(i) for i in ids], app).get(timeout=60) == [VALUE] * n

    figures = {"store": timed(store_all), "read": timed(read_each), "read_all": timed(read_all)}
    app.close()
    return figures


def run_celery(url: str, n: int) -> dict[str, float]:
    from celery import Celery
    from celery.result import ResultSet

    app = Celery("bench", broker="memory://", backend=url)
    app.conf.result_serializer = "json"
    backend = app.backend
    if hasattr(backend, "session_manager"):
        backend.session_manager.forked = True  # pooled, as in Celery's prefork workers
    ids = [str(uuid.uuid4()) for _ in range(n)]
    backend.store_result("warm-up", VALUE, "SUCCESS")

    def store_all() -> None:
        for task_id in ids:
            backend.store_result(task_id, VALUE, "SUCCESS")

    def read_each() -> None:
        for task_id in ids:
            assert app.AsyncResult(task_id).get(timeout=10) == VALUE

    def read_all() -> None:
        results = ResultSet([app.AsyncResult(i) for i in ids], app=app)
        values = results.join_native(timeout=60) if backend.supports_native_join else results.join(timeout=60)
        assert values == [VALUE] * n

    figures = {"store": timed(store_all), "read": timed(read_each), "read_all": timed(read_all)}
    if hasattr(backend, "session_manager"):
        backend.session_manager.invalidate(backend.url)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {"n": args.n, "stores": {}}
    print(
        f"result stores: {args.n:,} results per side, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    header = f"{'store':<11} {'side':<8} {'store/s':>9} {'read/s':>9} {'read all ms':>12}   load"
    print(header)
    for store in args.stores.split(","):
        runs: dict[str, list[dict[str, float]]] = {"celeriac": [], "celery": []}
        load = os.getloadavg()[0]
        for repeat in range(args.repeats):
            sides = ("celeriac", "celery") if repeat % 2 == 0 else ("celery", "celeriac")
            with servers(store) as (ours, theirs):
                for side in sides:
                    run = run_celeriac(ours, args.n) if side == "celeriac" else run_celery(theirs, args.n)
                    runs[side].append(run)
        medians = {
            side: {key: statistics.median(r[key] for r in figures) for key in ("store", "read", "read_all")}
            for side, figures in runs.items()
        }
        for side in ("celeriac", "celery"):
            m = medians[side]
            print(
                f"{store:<11} {side:<8} {args.n / m['store']:>9,.0f} {args.n / m['read']:>9,.0f}"
                f" {m['read_all'] * 1000:>12,.0f}   {load:.2f}"
            )
        ratio = {
            key: medians["celery"][key] / medians["celeriac"][key] for key in ("store", "read", "read_all")
        }
        shown = f"{ratio['store']:>8.2f}x {ratio['read']:>8.2f}x {ratio['read_all']:>11.2f}x"
        print(f"{store:<11} {'ratio':<8} {shown}   (Celery's time / celeriac's: above 1, celeriac is faster)")
        report["stores"][store] = {"medians_s": medians, "ratio": ratio, "loadavg": load}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
