"""celeriac's canvas against Celery's, on one Redis server: a large group, and a chord.

``.venv/bin/python benchmarks/canvas.py [--group-size 10000] [--chord-size 1000] [--repeats 3]
[--workers 2] [--concurrency 4] [--json PATH]``

Method
------
Two scenarios, both through each framework's own canvas API and its own ``GroupResult`` /
``AsyncResult``, with no-op tasks, so that what is measured is the workflow machinery:

1. **group** - ``group(noop.s() for _ in range(N))`` (N = 10,000) is built before the clock
   starts. *publish* is the time ``apply_async()`` takes to return (both sides freeze the
   group and publish every member's message); *all results* is the time from the call to
   ``apply_async()`` until ``GroupResult.get()`` has returned every member's value (Celery
   joins natively on Redis, with pub/sub; celeriac reads the results in order, waiting on
   each one with pub/sub when it is not stored yet). Every value must be None.
2. **chord** - ``chord(group(noop.s() for _ in range(M)), count.s())`` (M = 1,000), whose
   body returns how many values it was given. The clock runs from the call to
   ``apply_async()`` until the body's ``AsyncResult.get()`` returns (it must return M); the
   time ``apply_async()`` took is reported too. The body is started by the worker that
   finished the last header task: Celery's Redis backend counts parts in ``.j``/``.t`` keys
   with a Lua script, celeriac's Redis result store in a set with a Lua script.

The workers are each framework's own CLI in subprocesses, started before the measurements
and warmed up, untimed, with a task, a group of 8 and a chord of 8:
``celeriac -A canvas worker -P threads -c 4 -l WARNING`` and ``celery -A canvas worker -P
threads -c 4 -l WARNING --without-gossip --without-mingle --without-heartbeat``. There are
**two** worker processes on each side (``--workers``), as in ``run.py``'s and ``pools.py``'s
Redis drains: one process would be bound by its GIL to one of the machine's two cores, and
with two a chord's parts finish in both processes, so its completion is counted across them
(the case a chord's atomic counter exists for). Both scenarios of a run use the same
workers, group first.

Both sides are on one Redis (``CANVAS_BENCH_REDIS_URL``, by default db 11 of the local
server), broker and results, each run under a fresh key prefix: celeriac's streams layout
(its default) with ``redis.key_prefix`` and ``redis.result_key_prefix``; Celery's kombu Redis
transport and its Redis result backend with ``global_keyprefix``, configured as
``pools.py`` configures them. Celery's chords on Redis use its recommended native path
(``supports_native_join``: no ``chord_unlock`` polling task; ``result_chord_ordered`` is on
by default), its tasks store their results (the default), and its group join is its native
pub/sub join. Serializer (JSON), prefetch and acknowledgements are each framework's
defaults. Celery publishes a group's members one message at a time, as it ships: kombu 5.7's
``Producer.batch()`` would pipeline them, but Celery 5.7 neither uses it nor has a setting
for it. After a run exactly the keys under its prefix are deleted.

Each repeat runs both frameworks, the order rotated by one place per repeat (celeriac first
on even repeats). The report gives the median of the repeats per figure and a ratio
arranged so that above 1 means celeriac is better (Celery's time / celeriac's time). Every
wait has a deadline; workers are stopped by their PID (SIGTERM, then SIGKILL on their
process group) when the run ends, fails or is interrupted. The 1-minute load average at the
start of each run is recorded, since the machine is shared. This module is also the app the
workers load (``-A canvas``), selected by ``CANVAS_BENCH_SIDE``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pools

DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
GROUP_SIZE = 10_000
CHORD_SIZE = 1_000
WORKERS = 2
CONCURRENCY = 4
BOOT_TIMEOUT = 60.0
GROUP_TIMEOUT = 300.0
CHORD_TIMEOUT = 120.0
#: A short pause after the warm-up and between the scenarios, so that acks and result
#: writes of the previous step are not counted in the next one.
SETTLE = 0.5

NOOP = "canvasbench.noop"
COUNT = "canvasbench.count"


# --- the tasks, and the apps the workers load ---------------------------------------------


def noop() -> None:
    return None


def count(values: list[Any]) -> int:
    """The chord body: how many header results it was given."""
    return len(values)


def celeriac_app(url: str, prefix: str) -> Any:
    app = pools.celeriac_app(url, prefix)
    app.task(name=NOOP)(noop)
    app.task(name=COUNT)(count)
    return app


def celery_app(url: str, prefix: str) -> Any:
    app = pools.celery_app(url, prefix)
    app.task(name=NOOP)(noop)
    app.task(name=COUNT)(count)
    return app


APPS: dict[str, Callable[[str, str], Any]] = {"celeriac": celeriac_app, "Celery": celery_app}

app: Any = None
if os.environ.get("CANVAS_BENCH_SIDE") in APPS:
    app = APPS[os.environ["CANVAS_BENCH_SIDE"]](
        os.environ["CANVAS_BENCH_URL"], os.environ["CANVAS_BENCH_PREFIX"]
    )


# --- one framework, for one run -------------------------------------------------------------


def redis_url() -> str:
    return os.environ.get("CANVAS_BENCH_REDIS_URL", DEFAULT_REDIS)


@dataclass
class Side:
    """One framework's producer app and worker command line, under the run's key prefix."""

    name: str
    url: str
    prefix: str
    concurrency: int
    app: Any = None

    def __post_init__(self) -> None:
        self.app = APPS[self.name](self.url, self.prefix)

    # The canvas primitives of each framework, built from its own task objects.
    def _primitives(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """This framework's ``group`` and ``chord``."""
        if self.name == "celeriac":
            import celeriac

            return celeriac.group, celeriac.chord
        import celery

        return celery.group, celery.chord

    def group(self, size: int) -> Any:
        group, _ = self._primitives()
        noop_task = self.app.tasks[NOOP]
        return group(noop_task.s() for _ in range(size))

    def chord(self, size: int) -> Any:
        _, chord = self._primitives()
        return chord(self.group(size), self.app.tasks[COUNT].s())

    def task(self) -> Any:
        return self.app.tasks[NOOP]

    def worker_command(self) -> list[str]:
        framework = "celeriac" if self.name == "celeriac" else "celery"
        command = [
            *(sys.executable, "-m", framework, "-A", "canvas", "worker"),
            *("-P", "threads", "-c", str(self.concurrency), "-l", "WARNING"),
        ]
        if framework == "celery":
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return command

    def worker_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERIAC_", "CELERY_", "POOLS_BENCH_", "BENCH_"))
        }
        return {
            **env,
            "CANVAS_BENCH_SIDE": self.name,
            "CANVAS_BENCH_URL": self.url,
            "CANVAS_BENCH_PREFIX": self.prefix,
        }

    def close(self) -> None:
        self.app.close()


# --- one run --------------------------------------------------------------------------------


@dataclass
class RunResult:
    group_publish_s: float
    group_all_s: float
    chord_publish_s: float
    chord_body_s: float
    loadavg: float


def run_once(framework: str, url: str, settings: argparse.Namespace) -> RunResult:
    """A fresh key prefix, the workers, the warm-up, both scenarios; then every key deleted."""
    import redis
    import run

    prefix = f"canvasbench-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(url)
    try:
        with tempfile.TemporaryDirectory(prefix=f"canvasbench-{framework.lower()}-") as tmpdir:
            side = Side(framework, url, prefix, settings.concurrency)
            try:
                workers = run.start_workers(side, Path(tmpdir), settings.workers)
                try:
                    return _measure(side, workers, settings)
                finally:
                    workers.stop()
            finally:
                side.close()
    finally:
        pools.cleanup(client, prefix)
        client.close()


def _measure(side: Side, workers: Any, settings: argparse.Namespace) -> RunResult:
    import run

    # Warm-up, untimed: the workers are up and consuming, and each code path has run once.
    run.wait_ready(side.task().delay(), workers, BOOT_TIMEOUT, 0.01)
    _get(side.group(8).apply_async(), workers, BOOT_TIMEOUT)
    _get(side.chord(8).apply_async(), workers, BOOT_TIMEOUT)
    time.sleep(SETTLE)
    load = os.getloadavg()[0]

    workflow = side.group(settings.group_size)
    started = time.perf_counter()
    result = workflow.apply_async()
    published = time.perf_counter()
    values = _get(result, workers, GROUP_TIMEOUT)
    finished = time.perf_counter()
    if len(values) != settings.group_size or any(v is not None for v in values):
        raise run.RunError(f"the group returned {len(values)} values, not {settings.group_size} Nones")
    group_publish_s, group_all_s = published - started, finished - started
    workers.check_alive()

    time.sleep(SETTLE)
    workflow = side.chord(settings.chord_size)
    started = time.perf_counter()
    result = workflow.apply_async()
    published = time.perf_counter()
    counted = _get(result, workers, CHORD_TIMEOUT)
    finished = time.perf_counter()
    if counted != settings.chord_size:
        raise run.RunError(f"the chord body counted {counted!r}, not {settings.chord_size}")
    workers.check_alive()
    return RunResult(group_publish_s, group_all_s, published - started, finished - started, load)


def _get(result: Any, workers: Any, timeout: float) -> Any:
    """The framework's own ``get``, with a deadline; a timeout fails the run with the logs."""
    import run

    try:
        return result.get(timeout=timeout)
    except Exception as exc:
        workers.check_alive()
        raise run.RunError(f"{type(exc).__name__}: {exc}; the workers' output:\n{workers.tail()}") from exc


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    scenario: str


def metrics(settings: dict[str, Any]) -> tuple[Metric, ...]:
    group, chord = f"{settings['group_size']:,}", f"{settings['chord_size']:,}"
    return (
        Metric("group_publish_s", f"group of {group}: publish"),
        Metric("group_all_s", f"group of {group}: all results"),
        Metric("chord_publish_s", f"chord of {chord}: publish"),
        Metric("chord_body_s", f"chord of {chord}: body result"),
    )


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: dict[str, list[RunResult]] = field(default_factory=dict)

    def median(self, framework: str, key: str) -> float | None:
        runs = self.runs.get(framework)
        return statistics.median(getattr(r, key) for r in runs) if runs else None

    def ratio(self, key: str) -> float | None:
        """Celery's time / celeriac's: above 1 when celeriac is faster."""
        ours, theirs = self.median("celeriac", key), self.median("Celery", key)
        if not ours or not theirs:
            return None
        return theirs / ours

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "medians": {
                metric.key: {
                    "scenario": metric.scenario,
                    "unit": "s",
                    **{name.lower(): self.median(name, metric.key) for name in self.runs},
                    "ratio": self.ratio(metric.key),  # Celery/celeriac: above 1, celeriac faster
                }
                for metric in metrics(self.settings)
            },
            "runs": {name: [asdict(r) for r in runs] for name, runs in self.runs.items()},
        }


def render(report: Report) -> Any:
    from rich.table import Table

    names = [name for name in APPS if name in report.runs]
    table = Table(
        title=f"canvas on Redis: median of {report.settings['repeats']} repeats, seconds",
        caption=(
            "publish: until apply_async returns; all results, body result: from apply_async "
            "until get returns. ratio: Celery's time / celeriac's (above 1: celeriac is faster)"
        ),
    )
    table.add_column("scenario")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("ratio", justify="right", style="bold")
    for metric in metrics(report.settings):
        ratio = report.ratio(metric.key)
        table.add_row(
            metric.scenario,
            *[_seconds(report.median(name, metric.key)) for name in names],
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    return table


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}"


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="celeriac's canvas (a group, a chord) against Celery's, on one Redis server.",
        epilog="A ratio above 1 means celeriac is faster.",
    )
    parser.add_argument("--group-size", type=int, default=GROUP_SIZE, help=f"default {GROUP_SIZE:,}")
    parser.add_argument(
        "--chord-size", type=int, default=CHORD_SIZE, help=f"header tasks (default {CHORD_SIZE:,})"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework; medians are reported")
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help=f"worker processes per side (default {WORKERS})"
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"threads per worker (default {CONCURRENCY})"
    )
    parser.add_argument("--celeriac-only", action="store_true", help="leave Celery out")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here as JSON")
    args = parser.parse_args(argv)
    for name in ("group_size", "chord_size", "repeats", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    import run
    from rich.console import Console

    console = Console()
    args = parse_args(argv)
    url = redis_url()
    frameworks = ["celeriac"]
    if not args.celeriac_only:
        why = run.missing(run.Framework("Celery", run.CelerySide, needs=("celery", "redis")))
        if why is not None:
            console.print(f"[red]error:[/] Celery {run.INSTALL_HINT} ({why})")
            return 2
        frameworks.append("Celery")
    report = Report(
        settings={
            "group_size": args.group_size,
            "chord_size": args.chord_size,
            "repeats": args.repeats,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "pool": "threads",
            "redis": url,
            "frameworks": frameworks,
        },
        machine=run.machine(),
    )
    console.print(
        f"[bold]canvas[/] on {url}: group of {args.group_size:,}, chord of {args.chord_size:,}, "
        f"{args.repeats} repeat(s), {args.workers} worker(s) x {args.concurrency} threads per side, "
        f"{os.cpu_count()} CPUs, commit {report.machine['commit'] or '?'}"
    )
    with run.workers_stopped_on_exit():
        for repeat in range(args.repeats):
            shift = repeat % len(frameworks)
            for framework in frameworks[shift:] + frameworks[:shift]:
                label = f"[{repeat + 1}/{args.repeats}] {framework}"
                try:
                    result = run_once(framework, url, args)
                except run.RunError as exc:
                    console.print(f"[red]{label} failed:[/] {exc}")
                    return 1
                report.runs.setdefault(framework, []).append(result)
                console.print(
                    f"{label}: group publish {result.group_publish_s:.3f} s, all {result.group_all_s:.3f} s; "
                    f"chord publish {result.chord_publish_s:.3f} s, body {result.chord_body_s:.3f} s "
                    f"(load {result.loadavg:.2f})"
                )
    console.print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
