"""What monitoring events cost a worker: drain rate with events off and on, and the hot-path cost.

``python plugins/events/benchmarks/events_overhead.py [--n 5000] [--repeats 3] [--broker URL]``

Drain, as in ``benchmarks/run.py`` and ``plugins/prefork/benchmarks/drain.py``: N no-op
tasks (plus one untimed) are published to a fresh SQLite file (or, with ``--broker
redis://…``, under a fresh key prefix on that Redis, deleted afterwards) with no worker running; a
worker (``celeriac -A bench_celeriac worker -P threads -c C``, with ``-E`` when events are
on) is started, and the clock runs from the first task's result being ready to the last
one's. Modes:

- ``off``: no events (the default).
- ``on``: ``-E`` with the default broker sink, nobody listening.
- ``on+monitor``: ``-E``, and ``celeriac events --dump`` reading every event meanwhile.

Besides the drain rate, the worker's own CPU time (user + system, all threads, from
``/proc``) between the first and the last result is reported per task: on a shared
machine it varies far less from run to run than the wall-clock rate.

Modes alternate within each repeat and the median is reported. ``--micro`` also times one
``EventDispatcher.send`` into the broker sink, the cost each event adds to the hot path.
Every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_celeriac  # noqa: E402 - lives in benchmarks/, put on the path just above

MODES = ("off", "on", "on+monitor")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(mode: str, n: int, concurrency: int, broker: str | None) -> tuple[float, float]:
    """Drain rate (tasks/s) and the worker's CPU time per task (microseconds) while draining."""
    with tempfile.TemporaryDirectory() as tmp:
        url = broker or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        prefix = f"bench-events-{secrets.token_hex(4)}:" if broker else ""
        os.environ["BENCH_EXTRA_PLUGINS"] = "events"  # the app measured enables the plugin measured
        app = bench_celeriac.make_app(url, prefix or None)
        task = app.tasks[bench_celeriac.TASK_NAME]
        first = task.delay()
        handles = [task.delay() for _ in range(n)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        # An inherited PYTHONPATH stays in front, so another source tree can be compared.
        path = [p for p in (os.environ.get("PYTHONPATH"), str(ROOT / "benchmarks")) if p]
        env.update(BENCH_BROKER_URL=url, BENCH_KEY_PREFIX=prefix, PYTHONPATH=os.pathsep.join(path))
        celeriac = [sys.executable, "-m", "celeriac", "-A", "bench_celeriac"]
        procs: list[subprocess.Popen[bytes]] = []
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        try:
            if mode == "on+monitor":
                procs.append(subprocess.Popen([*celeriac, "events", "--dump"], env=env, cwd=tmp, **quiet))
                time.sleep(1.0)  # let it subscribe before the worker starts
            flags = ["-E"] if mode != "off" else []
            worker = [*celeriac, "worker", "-P", "threads", "-c", str(concurrency), "-l", "WARNING", *flags]
            procs.append(subprocess.Popen(worker, env=env, cwd=tmp, **quiet))
            deadline = time.monotonic() + 60
            while not first.ready():
                assert time.monotonic() < deadline, "worker did not start in time"
                assert procs[-1].poll() is None, "worker exited"
                time.sleep(0.002)
            started = time.perf_counter()
            cpu_started = cpu_seconds(procs[-1].pid)
            while not handles[-1].ready():
                assert time.monotonic() < deadline + 120, "drain took too long"
                time.sleep(0.005)
            while not all(h.ready() for h in handles):
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(procs[-1].pid) - cpu_started
            assert all(h.successful() for h in handles)
            return n / elapsed, cpu / n * 1e6
        finally:
            for proc in reversed(procs):
                _stop(proc)
            app.close()
            if prefix:
                _delete_prefixed(url, prefix)


def _delete_prefixed(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


def micro() -> None:
    from celeriac._worker.events import EventDispatcher
    from celeriac.plugin import Envelope
    from celeriac.plugin import Subscription
    from celeriac_events import BrokerSink

    class Discard:
        """Broadcasts into nothing: the loop below outruns any real broker, on purpose."""

        def broadcast(self, channel: str, envelope: Envelope) -> None:
            pass

        def subscribe(self, channel: str) -> Subscription:
            raise NotImplementedError

    logging.getLogger("celeriac.events").setLevel(logging.ERROR)  # overflow warnings expected here
    sink = BrokerSink(Discard(), max_buffer=10_000)
    dispatcher = EventDispatcher([sink], "bench@host")
    off = EventDispatcher([sink], "bench@host", enabled=False)
    number = 200_000
    on_s = min(timeit.repeat(lambda: dispatcher.send("task-started", uuid="x"), number=number, repeat=3))
    off_s = min(timeit.repeat(lambda: off.send("task-started", uuid="x"), number=number, repeat=3))
    sink.close()
    print(f"EventDispatcher.send into the broker sink: {on_s / number * 1e9:.0f} ns/event")
    print(f"EventDispatcher.send with events off:       {off_s / number * 1e9:.0f} ns/event")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro", action="store_true", help="also time one event on the hot path")
    parser.add_argument("--broker", help="a redis:// URL on loopback (default: a fresh SQLite file per run)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    cpus: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(args.repeats):
        for mode in modes if repeat % 2 == 0 else reversed(modes):
            rate, cpu = drain(mode, args.n, args.concurrency, args.broker)
            rates[mode].append(rate)
            cpus[mode].append(cpu)
            print(f"  {mode:10} run {repeat + 1}: {rate:8.0f} tasks/s  {cpu:6.0f} us CPU/task", flush=True)
    base_rate, base_cpu = statistics.median(rates[modes[0]]), statistics.median(cpus[modes[0]])
    for mode in modes:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
        print(
            f"{mode:10} -c {args.concurrency}: {rate:8.0f} tasks/s ({(rate / base_rate - 1) * 100:+5.1f}%)"
            f"  {cpu:6.0f} us worker CPU/task ({(cpu / base_cpu - 1) * 100:+5.1f}%)"
        )
    if args.micro:
        micro()


if __name__ == "__main__":
    main()
