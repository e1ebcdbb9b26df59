"""The demo: start a worker on the embedded SQLite default, send tasks, show results, stop.

Run it with ``make demo`` from the repository root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from celeriac import CeleriacError

HERE = Path(__file__).resolve().parent
console = Console()


LOG = HERE / "worker.log"


def start_worker() -> subprocess.Popen[bytes]:
    """The worker writes to worker.log, so that its banner and log lines (the expected
    failure's traceback among them) do not run through the demo's own output."""
    console.print("[bold]1.[/] starting a worker with embedded beat: [cyan]celeriac -A tasks worker -B[/]")
    with LOG.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "tasks", "worker", "-B", "--loglevel", "WARNING"],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "200"},  # the banner unwrapped
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "tasks:" not in _text(LOG) and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    for line in _text(LOG).splitlines():
        console.print(f"   {line}", highlight=False, soft_wrap=True)
    console.print(f"   (the worker logs to {LOG.name})")
    return worker


def main() -> int:
    for stale in [*HERE.glob("demo.sqlite3*"), *HERE.glob("celeriac-beat.sqlite3*"), HERE / "ticks.log", LOG]:
        stale.unlink(missing_ok=True)
    os.chdir(HERE)
    sys.path.insert(0, str(HERE))
    from tasks import add
    from tasks import app
    from tasks import divide
    from tasks import flaky
    from tasks import slow_square
    from tasks import word_count

    worker = start_worker()
    try:
        console.print("[bold]2.[/] sending 200 tasks and waiting for their results")
        started = time.perf_counter()
        results = [slow_square.delay(n) for n in range(200)]
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("running", total=len(results))
            for result in results:
                result.get(timeout=60)
                progress.advance(bar)
        elapsed = time.perf_counter() - started
        squares = [r.get() for r in results]
        assert squares == [n * n for n in range(200)]
        console.print(f"   200 x slow_square (50 ms each, 4 threads) in {elapsed:.2f} s")

        table = Table("call", "state", "result")
        for label, result in [
            ("add(2, 3)", add.delay(2, 3)),
            ("word_count('to be or not to be')", word_count.delay("to be or not to be")),
            ("flaky(succeed_on=2)", flaky.delay(2)),
            ("add.apply_async((1, 1), countdown=1)", add.apply_async((1, 1), countdown=1)),
            ("divide(1, 0)", divide.delay(1, 0)),
        ]:
            try:
                value = repr(result.get(timeout=30))
            except (ZeroDivisionError, CeleriacError) as exc:
                value = f"[red]{type(exc).__name__}: {exc}[/] (expected; traceback in {LOG.name})"
            table.add_row(label, result.state, value)
        console.print("[bold]3.[/] results")
        console.print(table)
        ticks = HERE / "ticks.log"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_lines(ticks)) < 2:
            time.sleep(0.2)
        ran = ", ".join(_lines(ticks)) or "never"
        console.print(f"   beat sent the periodic tasks.tick (every = 2s); it ran at {ran}")
    finally:
        console.print("[bold]4.[/] stopping the worker (SIGTERM: warm shutdown)")
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        app.close()
    console.print(f"   worker exited with code {code}; state is in {HERE / 'demo.sqlite3'}")
    return code


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


if __name__ == "__main__":
    sys.exit(main())
