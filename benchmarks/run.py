"""celeriac against Celery on the same kind of broker: publish rate, drain rate, round-trip latency.

Run it with ``make bench`` (which installs ``requirements-bench.txt``) or
``.venv/bin/python benchmarks/run.py [--broker sqlite] [--n 2000] [--m 100] [--repeats 3]``.

Method
------
Each repeat runs every framework once, in alternating order (celeriac first on even repeats,
Celery first on odd ones) so that drift on the machine does not favour one side. A run gets a
fresh temporary directory with its own database file and goes through three measurements:

1. **publish** - with no worker running, one producer publishes ``N`` no-op tasks with
   ``task.delay()``, one call after another. One task is published first, untimed, so that
   opening the connection and creating the tables is not counted. Reported in tasks/s.
2. **drain** - those ``N`` tasks (plus the untimed first one) are the backlog. The worker is
   started as a subprocess. The clock starts when the first task's result is ready, so worker
   start-up (interpreter, imports, connections) is excluded, and stops when the last of the
   ``N`` is ready: ``N / (t_last - t_first)`` tasks/s. This measures how fast a warm worker
   empties a backlog that is already in the broker, with no producer publishing at the same
   time. While it drains, the benchmark looks only at the last task published
   (``result.ready()`` every 5 ms), so that watching takes almost no CPU from the worker;
   then it checks every result (the clock stops later if one was still unfinished) and
   that all of them are SUCCESS.
3. **round trip** - with that worker still running and the queue empty, ``M`` sequential
   ``task.delay().get()`` calls (after one untimed call); median and 95th percentile in ms.

The worker is the framework's own CLI, in a subprocess, with a thread pool of 4
(``celeriac -A bench_celeriac worker -P threads -c 4 -l WARNING`` and
``celery -A bench_celery worker -P threads -c 4 --without-gossip --without-mingle
--without-heartbeat -l WARNING``), stopped at the end of the run by its PID (SIGTERM, then
SIGKILL after 5 s). Every wait has a deadline, so a stuck worker fails the run instead of
hanging it.

The report gives, per figure, the median of the repeats and the ratio, always arranged so
that a ratio above 1 means celeriac is better: celeriac/Celery for rates, Celery/celeriac for
latencies.

Fairness on SQLite
------------------
celeriac uses ``sqlite:///<file>`` (broker and results in one file). Celery uses kombu's
SQLAlchemy transport, ``sqla+sqlite:///<file>``, and the database result backend,
``db+sqlite:///<file>``, on one file too. Two settings would otherwise compare SQLite
configurations rather than the frameworks, so Celery is given celeriac's values:

* the journal: celeriac opens SQLite in WAL mode with ``synchronous=NORMAL``; SQLAlchemy's
  default is a rollback journal with ``synchronous=FULL`` (a disk sync at every commit).
  Celery's connections get the same two PRAGMAs (``--celery-sqlite-defaults`` turns this off).
* polling: on SQLite both sides poll. celeriac's idle worker backs off from 2 ms to 50 ms and
  ``get()`` from 1 ms to 50 ms; Celery sleeps a fixed ``polling_interval`` (1 s by default) in
  the worker and ``interval`` (0.5 s by default) in ``get()``. Celery gets 0.05 s for both
  (``--celery-poll-interval``), celeriac's longest sleep. With Celery's defaults a round trip
  costs about a second, which would measure only the sleeps.

Everything else is each framework's default (prefetch, acks, serializer: JSON on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TaskID
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
CONCURRENCY = 4
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 180.0
GET_TIMEOUT = 30.0
STOP_GRACE = 5.0
INSTALL_HINT = (
    "Celery is not installed, so only celeriac is measured. Install it with [bold]make bench[/] "
    "(which installs requirements-bench.txt) or "
    "[bold].venv/bin/pip install -r requirements-bench.txt[/]."
)

console = Console()


# --- brokers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerConfig:
    """How each framework reaches one kind of broker, given the run's temporary directory."""

    name: str
    description: str
    celeriac_url: Callable[[Path], str]
    celery_broker_url: Callable[[Path], str]
    celery_backend_url: Callable[[Path], str]
    #: Scenario sizes when not given on the command line: tasks, round trips, worker processes.
    n: int = 2000
    m: int = 100
    workers: int = 1
    #: A key prefix of the run's own (on a shared server), derived from its temporary directory.
    key_prefix: Callable[[Path], str | None] = lambda tmp: None
    #: Deletes what a run left on a shared server; only that run's keys.
    cleanup: Callable[[Path], None] = lambda tmp: None


def redis_url() -> str:
    """The server of ``--broker redis``: ``BENCH_REDIS_URL``, by default db 14 of the local Redis."""
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def redis_prefix(tmp: Path) -> str:
    return f"bench-{tmp.name}:"


def redis_cleanup(tmp: Path) -> None:
    """Delete the run's keys, found by its prefix; nothing else on the server is touched."""
    import redis

    client = redis.Redis.from_url(redis_url())
    keys = list(client.scan_iter(match=f"{redis_prefix(tmp)}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


BROKERS: dict[str, BrokerConfig] = {
    "sqlite": BrokerConfig(
        name="sqlite",
        description="SQLite file, broker and results in one fresh file per framework and run",
        # Four slashes: an absolute path, so that the worker's directory does not matter.
        celeriac_url=lambda tmp: f"sqlite:///{tmp / 'celeriac.sqlite3'}",
        celery_broker_url=lambda tmp: f"sqla+sqlite:///{tmp / 'celery.sqlite3'}",
        celery_backend_url=lambda tmp: f"db+sqlite:///{tmp / 'celery.sqlite3'}",
    ),
    "redis": BrokerConfig(
        name="redis",
        description="one Redis server, broker and results, keys under a fresh prefix per framework and run",
        celeriac_url=lambda tmp: redis_url(),
        celery_broker_url=lambda tmp: redis_url(),
        celery_backend_url=lambda tmp: redis_url(),
        n=20_000,
        m=500,
        workers=2,
        key_prefix=redis_prefix,
        cleanup=redis_cleanup,
    ),
}


# --- frameworks ---------------------------------------------------------------------------


class Handle(Protocol):
    """What a framework's ``delay()`` returns, as far as the benchmark uses it."""

    def ready(self) -> bool: ...

    def successful(self) -> bool: ...


@dataclass
class Settings:
    n: int
    m: int
    repeats: int
    broker: BrokerConfig
    workers: int
    concurrency: int
    #: None leaves Celery's own intervals (1 s in the worker, 0.5 s in ``get()``).
    celery_poll_interval: float | None
    celery_sqlite_defaults: bool


class Side(Protocol):
    """One framework on one broker, for one run: a producer app and a worker command."""

    name: str

    def publish(self) -> Handle: ...

    def round_trip(self) -> None: ...

    def worker_command(self) -> list[str]: ...

    def worker_env(self) -> dict[str, str]: ...

    def close(self) -> None: ...


class CeleriacSide:
    name = "celeriac"

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_celeriac

        self.url = settings.broker.celeriac_url(tmp)
        self.prefix = settings.broker.key_prefix(tmp)
        self.concurrency = settings.concurrency
        self.app = bench_celeriac.make_app(self.url, self.prefix)
        self.task = self.app.tasks[bench_celeriac.TASK_NAME]

    def publish(self) -> Handle:
        return self.task.delay()

    def round_trip(self) -> None:
        self.task.delay().get(timeout=GET_TIMEOUT)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celeriac", "-A", "bench_celeriac", "worker"),
            *("-P", "threads", "-c", str(self.concurrency), "-l", "WARNING"),
        ]

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
        return {**env, "BENCH_BROKER_URL": self.url, "BENCH_KEY_PREFIX": self.prefix or ""}

    def close(self) -> None:
        self.app.close()


class CelerySide:
    name = "Celery"

    def __init__(self, tmp: Path, settings: Settings) -> None:
        import bench_celery

        self.broker_url = settings.broker.celery_broker_url(tmp)
        self.backend_url = settings.broker.celery_backend_url(tmp)
        self.poll_interval = settings.celery_poll_interval
        self.wal = not settings.celery_sqlite_defaults
        self.prefix = settings.broker.key_prefix(tmp)
        self.concurrency = settings.concurrency
        self.app = bench_celery.make_app(
            self.broker_url, self.backend_url, self.poll_interval, wal=self.wal, key_prefix=self.prefix
        )
        self.task = self.app.tasks[bench_celery.TASK_NAME]

    def publish(self) -> Handle:
        handle: Handle = self.task.delay()
        return handle

    def round_trip(self) -> None:
        if self.poll_interval is None:
            self.task.delay().get(timeout=GET_TIMEOUT)
        else:
            self.task.delay().get(timeout=GET_TIMEOUT, interval=self.poll_interval)

    def worker_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celery", "-A", "bench_celery", "worker"),
            *("-P", "threads", "-c", str(self.concurrency), "-l", "WARNING"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
        return {
            **env,
            "BENCH_BROKER_URL": self.broker_url,
            "BENCH_BACKEND_URL": self.backend_url,
            "BENCH_POLL_INTERVAL": "" if self.poll_interval is None else str(self.poll_interval),
            "BENCH_SQLITE_WAL": "1" if self.wal else "0",
            "BENCH_KEY_PREFIX": self.prefix or "",
        }

    def close(self) -> None:
        self.app.close()


FRAMEWORKS: dict[str, Callable[[Path, Settings], Side]] = {"celeriac": CeleriacSide, "Celery": CelerySide}


def celery_missing() -> str | None:
    """Why Celery cannot be measured here, or None when it can."""
    try:
        import celery  # noqa: F401
        import kombu.transport.sqlalchemy  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


# --- worker processes ---------------------------------------------------------------------

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


class RunError(RuntimeError):
    """A run that could not finish: its worker exited, a deadline passed or a task failed."""


class Workers:
    """The worker processes of one run, each with its log file."""

    def __init__(self, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
        self.procs = procs

    def check_alive(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is not None:
                raise RunError(f"a worker exited with code {proc.returncode}:\n{log_tail(log)}")

    def tail(self) -> str:
        return "\n".join(log_tail(log) for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            stop_worker(proc)


def start_workers(side: Side, tmp: Path, count: int) -> Workers:
    env = side.worker_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    procs = []
    for index in range(count):
        log = tmp / f"worker-{index}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                side.worker_command(),
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches only the benchmark, which
                # then stops the worker itself.
                start_new_session=True,
            )
        _RUNNING[proc.pid] = proc
        procs.append((proc, log))
    return Workers(procs)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period; the whole process group, by its id."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE)
        # The worker leads its own process group (start_new_session): anything it started
        # and left behind goes with it. The group id is the worker's pid, not a name.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _RUNNING.pop(proc.pid, None)


def stop_all_workers() -> None:
    for proc in list(_RUNNING.values()):
        stop_worker(proc)


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(the worker printed nothing)"


def wait_ready(handle: Handle, workers: Workers, timeout: float, step: float) -> None:
    deadline = time.monotonic() + timeout
    while not handle.ready():
        workers.check_alive()
        if time.monotonic() > deadline:
            raise RunError(f"no result after {timeout:.0f} s; the workers' output:\n{workers.tail()}")
        time.sleep(step)


# --- one run --------------------------------------------------------------------------------


@dataclass
class RunResult:
    publish_per_s: float
    drain_per_s: float
    round_trip_median_ms: float
    round_trip_p95_ms: float
    round_trip_p99_ms: float = 0.0


@dataclass
class Display:
    progress: Progress
    overall: TaskID
    step: TaskID

    def phase(self, label: str, total: int) -> None:
        self.progress.reset(self.step, total=total, description=label)

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.step, amount)


def run_once(framework: str, settings: Settings, display: Display, label: str) -> RunResult:
    with tempfile.TemporaryDirectory(prefix=f"bench-{framework.lower()}-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            side = FRAMEWORKS[framework](tmp, settings)
            try:
                return _measure(side, tmp, settings, display, label)
            finally:
                side.close()
        finally:
            settings.broker.cleanup(tmp)


def _measure(side: Side, tmp: Path, settings: Settings, display: Display, label: str) -> RunResult:
    n, m = settings.n, settings.m
    # publish: one untimed task opens the connection and creates the tables.
    display.phase(f"{label}: publish", n)
    first = side.publish()
    first.ready()  # creates the result tables before a worker races to create them too
    handles: list[Handle] = []
    chunk = max(n // 100, 1)
    started = time.perf_counter()
    for i in range(n):
        handles.append(side.publish())
        if i % chunk == chunk - 1:
            display.advance(chunk)
    publish_s = time.perf_counter() - started
    display.advance(n % chunk)

    workers = start_workers(side, tmp, settings.workers)
    try:
        # drain: the clock starts when the first (untimed) task is done, i.e. when the worker
        # is up and consuming, and stops when the last of the n is. Only the last task is
        # watched while the worker drains, so that watching costs the worker (which shares
        # the CPUs) almost nothing; the pass over all of them afterwards stops the clock
        # later only if one was still unfinished.
        display.phase(f"{label}: worker start", 1)
        wait_ready(first, workers, BOOT_TIMEOUT, 0.005)
        t_first = time.perf_counter()
        display.phase(f"{label}: drain", 1)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        wait_ready(handles[-1], workers, DRAIN_TIMEOUT, 0.005)
        t_last = time.perf_counter()
        for handle in handles:
            if not handle.ready():
                wait_ready(handle, workers, max(deadline - time.monotonic(), 0.0), 0.005)
                t_last = time.perf_counter()
        drain_s = t_last - t_first
        display.advance()
        failed = sum(not handle.successful() for handle in handles)
        if failed:
            raise RunError(f"{failed} of {n} tasks did not succeed; the workers' output:\n{workers.tail()}")

        # round trip: the worker is warm and the queue is empty.
        display.phase(f"{label}: round trip", m)
        side.round_trip()
        latencies: list[float] = []
        for _ in range(m):
            started = time.perf_counter()
            side.round_trip()
            latencies.append((time.perf_counter() - started) * 1000)
            display.advance()
        workers.check_alive()
    finally:
        workers.stop()
    return RunResult(
        publish_per_s=n / publish_s,
        drain_per_s=n / drain_s,
        round_trip_median_ms=statistics.median(latencies),
        round_trip_p95_ms=percentile(latencies, 95),
        round_trip_p99_ms=percentile(latencies, 99),
    )


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    scenario: str
    unit: str
    higher_is_better: bool


METRICS = (
    Metric("publish_per_s", "publish (no worker)", "tasks/s", higher_is_better=True),
    Metric("drain_per_s", "drain backlog", "tasks/s", higher_is_better=True),
    Metric("round_trip_median_ms", "round trip, median", "ms", higher_is_better=False),
    Metric("round_trip_p95_ms", "round trip, p95", "ms", higher_is_better=False),
    Metric("round_trip_p99_ms", "round trip, p99", "ms", higher_is_better=False),
)


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    def median(self, framework: str, key: str) -> float | None:
        runs = self.runs.get(framework)
        return statistics.median(getattr(r, key) for r in runs) if runs else None

    def ratio(self, metric: Metric) -> float | None:
        ours, theirs = self.median("celeriac", metric.key), self.median("Celery", metric.key)
        if ours is None or theirs is None or ours == 0 or theirs == 0:
            return None
        return ours / theirs if metric.higher_is_better else theirs / ours

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "medians": {
                metric.key: {
                    "unit": metric.unit,
                    "celeriac": self.median("celeriac", metric.key),
                    "celery": self.median("Celery", metric.key),
                    "ratio_celeriac_better_above_1": self.ratio(metric),
                }
                for metric in METRICS
            },
            "runs": {name: [asdict(r) for r in runs] for name, runs in self.runs.items()},
        }


def render(report: Report) -> Table:
    repeats = report.settings["repeats"]
    sides = "celeriac vs Celery" if "Celery" in report.runs else "celeriac (Celery not measured)"
    table = Table(
        title=f"{sides} on {report.settings['broker']}: median of {repeats} repeats",
        caption=(
            "ratio > 1 means celeriac is better: celeriac/Celery for rates, Celery/celeriac for latencies"
        ),
    )
    table.add_column("scenario")
    table.add_column("unit")
    table.add_column("celeriac", justify="right")
    table.add_column("Celery", justify="right")
    table.add_column("ratio", justify="right", style="bold")
    for metric in METRICS:
        ratio = report.ratio(metric)
        table.add_row(
            metric.scenario,
            metric.unit,
            _fmt(report.median("celeriac", metric.key)),
            _fmt(report.median("Celery", metric.key)),
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    return table


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    versions: dict[str, str | None] = {}
    for package in (
        "celeriac",
        "celeriac-sqlite",
        "celeriac-redis",
        "celery",
        "kombu",
        "sqlalchemy",
        "redis",
        "hiredis",
    ):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "versions": versions,
    }


def git_commit() -> str | None:
    """The checked-out commit, with ``+dirty`` when the measured code has uncommitted changes."""
    repo = HERE.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "kernel", "plugins"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if changes else head


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark celeriac against Celery on the same kind of broker.",
        epilog="A ratio above 1 means celeriac is better.",
    )
    parser.add_argument("--broker", choices=sorted(BROKERS), default="sqlite", help="broker for both sides")
    parser.add_argument(
        "--n", type=int, help="tasks published and drained per run (sqlite 2000, redis 20000)"
    )
    parser.add_argument("--m", type=int, help="sequential round trips per run (sqlite 100, redis 500)")
    parser.add_argument("--workers", type=int, help="worker processes (sqlite 1, redis 2)")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"threads per worker (default {CONCURRENCY})"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework; medians are reported")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here as JSON")
    parser.add_argument(
        "--celery-poll-interval",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="Celery's worker polling_interval and get() interval (its defaults: 1.0 and 0.5)",
    )
    parser.add_argument(
        "--celery-sqlite-defaults",
        action="store_true",
        help="leave Celery's SQLite on SQLAlchemy's journal settings instead of WAL + synchronous=NORMAL",
    )
    parser.add_argument(
        "--celery-defaults",
        action="store_true",
        help="run Celery on its own settings: both of the above (mostly measures its polling sleeps)",
    )
    parser.add_argument("--celeriac-only", action="store_true", help="do not run Celery")
    args = parser.parse_args(argv)
    broker = BROKERS[args.broker]
    for name in ("n", "m", "workers"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(broker, name))
    for name in ("n", "m", "repeats", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


@contextmanager
def workers_stopped_on_exit() -> Iterator[None]:
    """Stop every worker on the way out, including on SIGTERM, SIGHUP or Ctrl-C."""

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all_workers()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        n=args.n,
        m=args.m,
        repeats=args.repeats,
        broker=BROKERS[args.broker],
        workers=args.workers,
        concurrency=args.concurrency,
        celery_poll_interval=None if args.celery_defaults else args.celery_poll_interval,
        celery_sqlite_defaults=args.celery_sqlite_defaults or args.celery_defaults,
    )
    frameworks = ["celeriac"]
    if not args.celeriac_only:
        missing = celery_missing()
        if missing is None:
            frameworks.append("Celery")
        else:
            console.print(f"[yellow]{INSTALL_HINT}[/] ({missing})")

    report = Report(
        settings={
            "broker": settings.broker.name,
            "n": settings.n,
            "m": settings.m,
            "repeats": settings.repeats,
            "workers": settings.workers,
            "concurrency": settings.concurrency,
            "pool": "threads",
            "celery_poll_interval": (
                "celery defaults (1.0, get 0.5)"
                if settings.celery_poll_interval is None
                else settings.celery_poll_interval
            ),
            "celery_sqlite": "sqlalchemy defaults" if settings.celery_sqlite_defaults else "WAL, NORMAL",
        },
        machine=machine(),
    )
    console.print(
        f"[bold]{' vs '.join(frameworks)}[/] on {settings.broker.description}; "
        f"N={settings.n}, M={settings.m}, {settings.repeats} repeats, "
        f"{settings.workers} worker process(es) x {settings.concurrency} threads, "
        f"{os.cpu_count()} CPUs, commit {report.machine['commit'] or '?'}"
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with workers_stopped_on_exit(), progress:
        overall = progress.add_task("runs", total=settings.repeats * len(frameworks))
        display = Display(progress, overall, progress.add_task("", total=1))
        for repeat in range(settings.repeats):
            # Alternate the order, so that neither side always runs on a warmer (or busier) machine.
            order = frameworks if repeat % 2 == 0 else frameworks[::-1]
            for framework in order:
                label = f"[{repeat + 1}/{settings.repeats}] {framework}"
                try:
                    result = run_once(framework, settings, display, label)
                except RunError as exc:
                    progress.stop()
                    console.print(f"[red]{label} failed:[/] {exc}")
                    return 1
                report.runs.setdefault(framework, []).append(result)
                progress.console.print(
                    f"{label}: publish {result.publish_per_s:,.0f}/s, drain {result.drain_per_s:,.0f}/s, "
                    f"round trip {result.round_trip_median_ms:.1f} ms (p95 {result.round_trip_p95_ms:.1f})"
                )
                progress.advance(overall)

    console.print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
