"""celeriac's execution pools against Celery's, on one Redis server.

``.venv/bin/python benchmarks/pools.py [--n 20000] [--io-n 1000] [--repeats 3] [--quick]``

Two scenarios, each framework's own worker CLI in a subprocess:

1. **drain** - ``N`` no-op tasks (plus one untimed) are published with no worker running;
   the workers are started; the clock runs from the first task's result being stored to the
   last one's (``N / (t_last - t_first)`` tasks/s), so worker start-up is not counted. While
   the workers drain, only the last task's result key is watched (a ``GET`` every 5 ms);
   afterwards every result is read (``MGET``) and must be SUCCESS.
2. **I/O-bound, queued** (``io-queued``) - ``IO_N`` tasks that each wait 100 ms are published
   with no worker running, then one worker is started. Each task returns the wall-clock
   time it started; the clock runs from the first task starting to the last result stored
   (seen by one ``MGET`` of the pending keys every 5 ms), so neither the producer nor worker
   start-up is counted: this is the pool's own time for the batch.
3. **I/O-bound, burst** (``io``) - the worker is started and warmed with one untimed task;
   then ``IO_N`` tasks that each wait 100 ms are published one ``delay()`` after another,
   and the clock runs from the first publish to the last result stored (publishing is
   inside the measurement, so a slow producer round trip shows here).

Both sides are on the same Redis (``POOLS_BENCH_REDIS_URL``, by default db 12 of the local
server), each run under a fresh key prefix: celeriac's streams layout (its default) with
``redis.key_prefix`` and ``redis.result_key_prefix``; Celery's kombu Redis transport and Redis
result backend with ``global_keyprefix``. Only the run's own keys are deleted afterwards.
Serializer, prefetch, acknowledgements: each framework's defaults (JSON on both sides).

Each repeat runs every case once, in an order rotated by one each repeat; the report gives
medians and the 1-minute load average seen at the start of every measurement (the machine is
shared: other jobs' load shows there). This module is also the app the workers load
(``-A pools``), selected by ``POOLS_BENCH_SIDE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 300.0
IO_TIMEOUT = 120.0
#: A run in which no result is stored for this long has stalled: it fails rather than waits.
STALL_TIMEOUT = 20.0
POLL = 0.005
#: drain: no-op throughput; io-queued: the pool's time for a queued batch of waits;
#: io: the same batch published while the worker runs (the producer inside the clock).
SCENARIOS = ("drain", "io-queued", "io")
IO_SECONDS = 0.1
READY_STATES = {b"SUCCESS", b"FAILURE", b"REVOKED"}

NOOP = "poolbench.noop"
NOOP_ASYNC = "poolbench.noop_async"
SLEEP = "poolbench.sleep"
SLEEP_ASYNC = "poolbench.sleep_async"


# --- the tasks, and the apps the workers load ---------------------------------------------


def noop() -> None:
    return None


async def noop_async() -> None:
    return None


def sleep(seconds: float) -> float:
    """Wait; return when the wait started (the queued I/O scenario's clock starts there)."""
    started = time.time()
    time.sleep(seconds)  # cooperative under gevent (patched)
    return started


async def sleep_async(seconds: float) -> float:
    started = time.time()
    await asyncio.sleep(seconds)
    return started


def celeriac_app(url: str, prefix: str) -> Any:
    from celeriac import Celeriac

    app = Celeriac(
        "poolbench",
        broker=url,
        config=False,
        env={},
        redis={"layout": "streams", "key_prefix": prefix, "result_key_prefix": prefix},
    )
    app.task(name=NOOP)(noop)
    app.task(name=NOOP_ASYNC)(noop_async)
    app.task(name=SLEEP)(sleep)
    app.task(name=SLEEP_ASYNC)(sleep_async)
    return app


def celery_app(url: str, prefix: str) -> Any:
    from celery import Celery

    app = Celery("poolbench", broker=url, backend=url)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"global_keyprefix": prefix},
        result_backend_transport_options={"global_keyprefix": prefix},
    )
    app.task(name=NOOP)(noop)
    app.task(name=SLEEP)(sleep)
    return app


app: Any = None
if os.environ.get("POOLS_BENCH_SIDE") == "celeriac":
    app = celeriac_app(os.environ["POOLS_BENCH_URL"], os.environ["POOLS_BENCH_PREFIX"])
elif os.environ.get("POOLS_BENCH_SIDE") == "celery":
    app = celery_app(os.environ["POOLS_BENCH_URL"], os.environ["POOLS_BENCH_PREFIX"])


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One framework on one pool: how many worker processes, with which options."""

    key: str
    side: str  # "celeriac" or "celery"
    pool: str
    concurrency: int
    processes: int
    task: str
    note: str = ""

    @property
    def label(self) -> str:
        name = "celeriac" if self.side == "celeriac" else "Celery"
        workers = f"{self.processes} x " if self.processes > 1 else ""
        return f"{name} {self.pool} ({workers}-c {self.concurrency})"

    def command(self) -> list[str]:
        if self.side == "celery":
            return [
                *(sys.executable, "-m", "celery", "-A", "pools", "worker"),
                *("-P", self.pool, "-c", str(self.concurrency), "-l", "WARNING"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ]
        # gevent must patch before anything is imported: its launcher, then the usual CLI.
        launcher = "celeriac_gevent" if self.pool == "gevent" else "celeriac"
        return [
            *(sys.executable, "-m", launcher, "-A", "pools", "worker"),
            *("-P", self.pool, "-c", str(self.concurrency), "-l", "WARNING"),
        ]


#: Drain of no-op tasks. Prefork: one worker with two children on both sides (a prefork
#: worker is one parent with -c children). The others: two worker processes, four slots each,
#: as benchmarks/run.py runs its Redis drain. The asyncio pool runs an ``async def`` no-op
#: (the same function as a plain task would run on its side threads, i.e. the threads pool).
DRAIN_CASES = (
    Case("c-prefork", "celeriac", "prefork", 2, 1, NOOP),
    Case("c-threads", "celeriac", "threads", 4, 2, NOOP),
    Case("c-solo", "celeriac", "solo", 1, 2, NOOP),
    Case("c-asyncio", "celeriac", "asyncio", 4, 2, NOOP_ASYNC),
    Case("c-gevent", "celeriac", "gevent", 4, 2, NOOP),
    Case("celery-prefork", "celery", "prefork", 2, 1, NOOP),
    Case("celery-threads", "celery", "threads", 4, 2, NOOP),
)
#: 100 ms waits, one worker process each.
IO_CASES = (
    Case("c-asyncio", "celeriac", "asyncio", 1000, 1, SLEEP_ASYNC, "await asyncio.sleep(0.1)"),
    Case("c-gevent", "celeriac", "gevent", 1000, 1, SLEEP, "time.sleep(0.1), patched"),
    Case("c-threads", "celeriac", "threads", 100, 1, SLEEP, "time.sleep(0.1)"),
    Case("celery-threads", "celery", "threads", 100, 1, SLEEP, "time.sleep(0.1)"),
    Case("celery-gevent", "celery", "gevent", 1000, 1, SLEEP, "time.sleep(0.1), patched"),
)


# --- Redis: result watching and cleanup -----------------------------------------------------


def redis_url() -> str:
    return os.environ.get("POOLS_BENCH_REDIS_URL", DEFAULT_REDIS)


def result_key(prefix: str, task_id: str) -> str:
    """Both sides store a result at ``<prefix>celery-task-meta-<id>`` as Celery's JSON."""
    return f"{prefix}celery-task-meta-{task_id}"


def state_of(value: bytes | str | None) -> bytes | None:
    if value is None:
        return None
    try:
        status = json.loads(value).get("status")
    except (ValueError, AttributeError):
        return b"?"
    return str(status).encode() if status is not None else b"?"


def cleanup(client: Any, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    return len(keys)


class RunError(RuntimeError):
    """A run that could not finish: a worker exited, a deadline passed or a task failed."""


# --- worker processes: started here, registered, stopped and tailed by run.py's helpers -----


class Workers:
    def __init__(self, case: Case, url: str, prefix: str, tmp: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "CELERY_"))}
        env.update(
            POOLS_BENCH_SIDE=case.side,
            POOLS_BENCH_URL=url,
            POOLS_BENCH_PREFIX=prefix,
            PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
        )
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for index in range(case.processes):
            log = tmp / f"worker-{index}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    case.command(),
                    cwd=tmp,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: stopped by its pid, with its children
                )
            run_helpers()._RUNNING[proc.pid] = proc
            self.procs.append((proc, log))

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.procs]

    def check_alive(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is not None:
                raise RunError(f"a worker exited with code {proc.returncode}:\n{run_helpers().log_tail(log)}")

    def tail(self) -> str:
        return "\n".join(run_helpers().log_tail(log) for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            run_helpers().stop_worker(proc)


def run_helpers() -> Any:
    """benchmarks/run.py, imported when first needed: this module is also the app the
    workers load, and they need none of it."""
    import run

    return run


# --- one run --------------------------------------------------------------------------------


@dataclass
class Result:
    value: float  # tasks/s (drain) or seconds (I/O)
    loadavg: float  # 1-minute load average when the measurement started
    publish_per_s: float


class Run:
    """One case, once: a fresh key prefix, a producer app, the workers, cleanup."""

    def __init__(self, case: Case, url: str) -> None:
        import redis

        self.case = case
        self.url = url
        self.prefix = f"poolbench-{uuid.uuid4().hex[:12]}:"
        self.client = redis.Redis.from_url(url)
        self.app = celeriac_app(url, self.prefix) if case.side == "celeriac" else celery_app(url, self.prefix)
        self.task = self.app.tasks[case.task]

    def close(self) -> None:
        with suppress(Exception):
            self.app.close()
        cleanup(self.client, self.prefix)
        self.client.close()

    def key(self, handle: Any) -> str:
        return result_key(self.prefix, str(handle.id))

    def wait_one(self, handle: Any, workers: Workers, timeout: float) -> None:
        """Until the handle's result is stored; fails when the db's key count stops growing."""
        key, deadline = self.key(handle), time.monotonic() + timeout
        keys, moved = -1, time.monotonic()
        while state_of(self.client.get(key)) not in READY_STATES:
            workers.check_alive()
            now = time.monotonic()
            if now > deadline:
                raise RunError(f"no result after {timeout:.0f} s; the workers' output:\n{workers.tail()}")
            if now - moved > 1.0:  # the db is this benchmark's: its size grows with the results
                size = int(self.client.dbsize())
                if size != keys:
                    keys, moved = size, now
                elif now - moved > STALL_TIMEOUT:
                    raise RunError(f"stalled: no result stored for {STALL_TIMEOUT:.0f} s\n{self.diagnose()}")
            time.sleep(POLL)

    def diagnose(self) -> str:
        """What the stream's consumer group says: delivered, pending per consumer."""
        lines = []
        with suppress(Exception):
            lines.append(
                f"results stored: {sum(1 for _ in self.client.scan_iter(f'{self.prefix}celery-task-meta-*'))}"
            )
            for stream in self.client.scan_iter(f"{self.prefix}{{*}}:[0-9]"):
                for group in self.client.xinfo_groups(stream):
                    lines.append(f"{stream.decode()}: {group}")
                    for consumer in self.client.xinfo_consumers(stream, group["name"]):
                        lines.append(f"  {consumer}")
        return "\n".join(lines)

    def wait_all(self, handles: list[Any], workers: Workers, timeout: float) -> bool:
        """Until every result is stored, then every one must be SUCCESS; True if it had to wait."""
        waited = False
        pending = [self.key(h) for h in handles]
        states: dict[str, bytes] = {}
        deadline = time.monotonic() + timeout
        moved, left = time.monotonic(), len(pending)
        while pending:
            still = []
            for start in range(0, len(pending), 1000):
                chunk = pending[start : start + 1000]
                for key, value in zip(chunk, self.client.mget(chunk), strict=True):
                    state = state_of(value)
                    if state in READY_STATES:
                        states[key] = state
                    else:
                        still.append(key)
            pending = still
            if pending:
                workers.check_alive()
                if time.monotonic() > deadline:
                    raise RunError(f"{len(pending)} results missing after {timeout:.0f} s:\n{workers.tail()}")
                if len(pending) != left:
                    moved, left = time.monotonic(), len(pending)
                elif time.monotonic() - moved > STALL_TIMEOUT:
                    raise RunError(f"stalled: {left} results missing\n{self.diagnose()}")
                waited = True
                time.sleep(POLL)
        failed = sum(state != b"SUCCESS" for state in states.values())
        if failed:
            raise RunError(f"{failed} of {len(handles)} tasks did not succeed:\n{workers.tail()}")
        return waited

    def drain(self, n: int, tmp: Path) -> Result:
        first = self.task.delay()
        started = time.perf_counter()
        handles = [self.task.delay() for _ in range(n)]
        publish_per_s = n / (time.perf_counter() - started)
        load = os.getloadavg()[0]
        workers = Workers(self.case, self.url, self.prefix, tmp)
        try:
            self.wait_one(first, workers, BOOT_TIMEOUT)
            t_first = time.perf_counter()
            self.wait_one(handles[-1], workers, DRAIN_TIMEOUT)
            t_last = time.perf_counter()
            # One that finished after the last one published moves the clock to when all have.
            if self.wait_all(handles, workers, DRAIN_TIMEOUT):
                t_last = time.perf_counter()
            workers.check_alive()
        finally:
            workers.stop()
        return Result(n / (t_last - t_first), load, publish_per_s)

    def io_queued(self, n: int, tmp: Path) -> Result:
        started = time.perf_counter()
        handles = [self.task.delay(IO_SECONDS) for _ in range(n)]
        publish_per_s = n / (time.perf_counter() - started)
        load = os.getloadavg()[0]
        workers = Workers(self.case, self.url, self.prefix, tmp)
        try:
            self.wait_all(handles, workers, BOOT_TIMEOUT + IO_TIMEOUT)
            finished = time.time()
            workers.check_alive()
            first = min(float(handle.get(timeout=10)) for handle in handles)
        finally:
            workers.stop()
        return Result(finished - first, load, publish_per_s)

    def io(self, n: int, tmp: Path) -> Result:
        args = (IO_SECONDS,)
        workers = Workers(self.case, self.url, self.prefix, tmp)
        try:
            warm = self.task.delay(0.0)
            self.wait_one(warm, workers, BOOT_TIMEOUT)
            time.sleep(0.5)  # let the worker settle after its first task
            load = os.getloadavg()[0]
            started = time.perf_counter()
            handles = [self.task.delay(*args) for _ in range(n)]
            published = time.perf_counter()
            self.wait_all(handles, workers, IO_TIMEOUT)
            elapsed = time.perf_counter() - started
            workers.check_alive()
        finally:
            workers.stop()
        return Result(elapsed, load, n / (published - started))


def run_case(scenario: str, case: Case, url: str, n: int) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"poolbench-{case.key}-") as tmpdir:
        run = Run(case, url)
        try:
            measure = {"drain": run.drain, "io-queued": run.io_queued, "io": run.io}[scenario]
            return measure(n, Path(tmpdir))
        finally:
            run.close()


# --- the report -----------------------------------------------------------------------------


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: dict[str, dict[str, list[Result]]] = field(default_factory=lambda: {s: {} for s in SCENARIOS})
    #: Runs that failed (stalled, timed out, a task failed): scenario -> case -> first line of why.
    failures: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {s: {} for s in SCENARIOS})

    def median(self, scenario: str, key: str) -> float | None:
        runs = self.runs[scenario].get(key)
        return statistics.median(r.value for r in runs) if runs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "medians": {
                scenario: {key: self.median(scenario, key) for key in runs}
                for scenario, runs in self.runs.items()
            },
            "runs": {
                scenario: {key: [asdict(r) for r in results] for key, results in runs.items()}
                for scenario, runs in self.runs.items()
            },
            "failures": self.failures,
        }


def _loads(results: list[Result]) -> str:
    return ", ".join(f"{r.loadavg:.1f}" for r in results)


def _ratio(value: float | None, other: float | None, higher_is_better: bool) -> str:
    if not value or not other:
        return "-"
    return f"{(value / other if higher_is_better else other / value):.2f}x"


def render(report: Report) -> list[Any]:
    from rich.table import Table

    repeats = report.settings["repeats"]
    tables: list[Any] = []
    drain = report.runs["drain"]
    if drain or report.failures["drain"]:
        table = Table(
            title=f"drain of {report.settings['n']:,} no-op tasks on Redis: median of {repeats}",
            caption="ratios: this case's rate / Celery's rate (above 1: faster than Celery)",
        )
        for column in ("case", "tasks/s", "runs (tasks/s)", "load avg (1 min)", "vs Celery prefork"):
            table.add_column(column, justify="left" if column == "case" else "right")
        table.add_column("vs Celery threads", justify="right")
        base_prefork = report.median("drain", "celery-prefork")
        base_threads = report.median("drain", "celery-threads")
        for case in DRAIN_CASES:
            if case.key not in drain:
                if case.key in report.failures["drain"]:
                    table.add_row(case.label, "failed", report.failures["drain"][case.key][0], "", "", "")
                continue
            value = report.median("drain", case.key)
            table.add_row(
                case.label,
                f"{value:,.0f}" if value else "-",
                ", ".join(f"{r.value:,.0f}" for r in drain[case.key]),
                _loads(drain[case.key]),
                _ratio(value, base_prefork, True),
                _ratio(value, base_threads, True),
            )
        tables.append(table)
    for scenario, clock in (
        ("io-queued", "queued first, first task started to last result"),
        ("io", "published in a burst, first publish to last result"),
    ):
        table = _io_table(report, scenario, clock)
        if table is not None:
            tables.append(table)
    return tables


def _io_table(report: Report, scenario: str, clock: str) -> Any:
    from rich.table import Table

    runs, failures = report.runs[scenario], report.failures[scenario]
    if not runs and not failures:
        return None
    table = Table(
        title=(
            f"{report.settings['io_n']:,} tasks waiting {IO_SECONDS * 1000:.0f} ms each, {clock}: "
            f"median of {report.settings['repeats']}"
        ),
        caption="ratios: Celery's time / this case's time (above 1: faster than Celery)",
    )
    for column in ("case", "task", "seconds", "runs (s)", "load avg (1 min)", "vs Celery threads"):
        table.add_column(column, justify="left" if column in ("case", "task") else "right")
    table.add_column("vs Celery gevent", justify="right")
    base_threads = report.median(scenario, "celery-threads")
    base_gevent = report.median(scenario, "celery-gevent")
    for case in IO_CASES:
        if case.key not in runs:
            if case.key in failures:
                table.add_row(case.label, case.note, "failed", failures[case.key][0], "", "", "")
            continue
        value = report.median(scenario, case.key)
        table.add_row(
            case.label,
            case.note,
            f"{value:.3f}" if value else "-",
            ", ".join(f"{r.value:.3f}" for r in runs[case.key]),
            _loads(runs[case.key]),
            _ratio(value, base_threads, False),
            _ratio(value, base_gevent, False),
        )
    return table


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    versions: dict[str, str | None] = {}
    for package in ("celeriac", "celeriac-redis", "celeriac-prefork", "celeriac-asyncio", "celeriac-gevent"):
        versions[package] = _version(package, version, PackageNotFoundError)
    for package in ("celery", "kombu", "redis", "hiredis", "gevent"):
        versions[package] = _version(package, version, PackageNotFoundError)
    commit = None
    with suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "kernel", "plugins"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        commit += "+dirty" if dirty else ""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _version(package: str, version: Any, not_found: type[Exception]) -> str | None:
    try:
        return str(version(package))
    except not_found:
        return None


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, help="no-op tasks drained per run (default 20000; --quick 2000)")
    parser.add_argument("--io-n", type=int, help="100 ms tasks per I/O run (default 1000)")
    parser.add_argument(
        "--repeats", type=int, help="runs per case; medians are reported (default 3; --quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="--n 2000 --repeats 1 unless given")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--cases", help="comma-separated case keys, e.g. c-prefork,celery-prefork (default: all)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    args.n = args.n or (2000 if args.quick else 20_000)
    args.io_n = args.io_n or 1000
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(args.scenarios) - set(SCENARIOS):
        parser.error(f"--scenarios: {', '.join(SCENARIOS)}")
    known = {c.key for c in (*DRAIN_CASES, *IO_CASES)}
    args.cases = None if not args.cases else {c.strip() for c in args.cases.split(",")}
    if args.cases and args.cases - known:
        parser.error(
            f"--cases: unknown {', '.join(sorted(args.cases - known))} (known: {', '.join(sorted(known))})"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    console = Console()
    args = parse_args(argv)
    url = redis_url()
    plan: list[tuple[str, list[Case]]] = []
    scenarios = (("drain", DRAIN_CASES), ("io-queued", IO_CASES), ("io", IO_CASES))
    for scenario, all_cases in scenarios:
        if scenario in args.scenarios:
            plan.append((scenario, [c for c in all_cases if args.cases is None or c.key in args.cases]))
    report = Report(
        settings={"n": args.n, "io_n": args.io_n, "repeats": args.repeats, "redis": url},
        machine=machine(),
    )
    console.print(
        f"[bold]pools[/] on {url}: drain N={args.n:,}, I/O N={args.io_n:,}, {args.repeats} repeat(s), "
        f"{os.cpu_count()} CPUs, commit {report.machine['commit']}, load {os.getloadavg()}"
    )
    with run_helpers().workers_stopped_on_exit():
        for scenario, cases in plan:
            for repeat in range(args.repeats):
                shift = repeat % max(len(cases), 1)
                for case in cases[shift:] + cases[:shift]:
                    n = args.n if scenario == "drain" else args.io_n
                    label = f"[{repeat + 1}/{args.repeats}] {scenario} {case.label}"
                    try:
                        result = run_case(scenario, case, url, n)
                    except RunError as exc:
                        console.print(f"[red]{label} failed:[/] {exc}")
                        why = str(exc).splitlines()[0]
                        report.failures[scenario].setdefault(case.key, []).append(why)
                        continue
                    report.runs[scenario].setdefault(case.key, []).append(result)
                    shown = f"{result.value:,.0f} tasks/s" if scenario == "drain" else f"{result.value:.3f} s"
                    console.print(
                        f"{label}: {shown} (publish {result.publish_per_s:,.0f}/s, load {result.loadavg:.2f})"
                    )
    for table in render(report):
        console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
