"""Drain rate of a backlog of no-op tasks on SQLite, per pool: ``python drain.py --pools prefork,threads``.

Method as in ``benchmarks/run.py``: N no-op tasks (plus one untimed) are published with no
worker running; a worker (``celeriac -A bench_celeriac worker -P POOL -c C``) is started;
the clock runs from the first task's result being ready to the last one's, so start-up is
excluded. Runs alternate between pools; the median of the repeats is reported. Every
worker is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_celeriac  # noqa: E402 - lives in benchmarks/, put on the path just above


def drain(pool: str, n: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        app = bench_celeriac.make_app(url)
        task = app.tasks[bench_celeriac.TASK_NAME]
        first = task.delay()
        handles = [task.delay() for _ in range(n)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env.update(BENCH_BROKER_URL=url, PYTHONPATH=str(ROOT / "benchmarks"))
        command = [sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker"]
        proc = subprocess.Popen(
            [*command, "-P", pool, "-c", str(concurrency), "-l", "WARNING"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not first.ready():
                assert proc.poll() is None, "the worker exited"
                assert time.monotonic() < deadline, "the worker did not start"
                time.sleep(0.002)
            started = time.perf_counter()
            while not handles[-1].ready():
                assert time.monotonic() < deadline + 120, "drain took too long"
                time.sleep(0.005)
            while not all(h.ready() for h in handles):
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            assert all(h.successful() for h in handles)
            return n / elapsed
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", default="prefork,threads")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pools = args.pools.split(",")
    rates: dict[str, list[float]] = {pool: [] for pool in pools}
    for repeat in range(args.repeats):
        for pool in pools if repeat % 2 == 0 else reversed(pools):
            rates[pool].append(drain(pool, args.n, args.concurrency))
            print(f"  {pool:8} run {repeat + 1}: {rates[pool][-1]:8.0f} tasks/s", flush=True)
    for pool in pools:
        median = statistics.median(rates[pool])
        print(f"{pool:8} -c {args.concurrency}: {median:8.0f} tasks/s  ({1e6 / median:.0f} us/task)")


if __name__ == "__main__":
    main()
