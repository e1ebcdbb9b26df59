"""1,000 I/O-bound tasks (each waits 100 ms) on SQLite: ``python io_bound.py``.

Each case publishes the tasks with no worker running, starts a worker
(``celeriac -A io_app worker -P POOL -c C``), and times from the first result ready to the
last one, as ``benchmarks/run.py`` does for its drain; workers are stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = [("asyncio", 1000, "io.wait_async"), ("threads", 100, "io.wait_sync"), ("threads", 4, "io.wait_sync")]


def run(pool: str, concurrency: int, task: str, n: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'io.sqlite3'}"
        os.environ["IO_BENCH_BROKER"] = url
        sys.modules.pop("io_app", None)
        import io_app

        first = io_app.app.send_task(task, (0,))
        handles = [io_app.app.send_task(task, (seconds,)) for _ in range(n)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        env["PYTHONPATH"] = str(HERE)
        command = [sys.executable, "-m", "celeriac", "-A", "io_app", "worker", "-l", "WARNING"]
        proc = subprocess.Popen(
            [*command, "-P", pool, "-c", str(concurrency)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while not first.ready():
                assert proc.poll() is None, "the worker exited"
                time.sleep(0.005)
            started = time.perf_counter()
            while not all(h.ready() for h in handles):
                assert time.monotonic() < deadline, "too slow"
                time.sleep(0.02)
            return time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            io_app.app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=0.1)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    for pool, concurrency, task in CASES:
        elapsed = run(pool, concurrency, task, args.n, args.seconds)
        print(
            f"{pool:8} -c {concurrency:5}: {args.n} x {args.seconds * 1000:.0f} ms in {elapsed:6.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
