"""Event-to-screen lag and memory of ``celeriac dashboard`` under 10,000 tasks a minute.

A worker (threads pool, events on) runs a no-op task on a SQLite broker while a producer
sends 10,000 tasks a minute for ``--seconds``; the dashboard runs as its own process with
the tasks page open in Debian's chromium. The page records, for every row it shows in the
SUCCESS state, the time it appeared minus the event's own ``succeeded`` timestamp (worker
clock = this machine's clock). Reported: lag p50/p99/max, tasks seen, the dashboard's peak
RSS, and the load average, since the machine is shared.

    .venv/bin/python plugins/dashboard/benchmarks/live_lag.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from celeriac import Celeriac
from celeriac.testing import ProcessGroup
from celeriac.testing import subprocess_env

_OBSERVER = """
window.__lags = [];
const seen = new Set();
new MutationObserver(() => {
  for (const row of document.querySelectorAll('tr[data-state="SUCCESS"]')) {
    const id = row.dataset.task;
    if (seen.has(id)) continue;
    seen.add(id);
    const at = parseFloat(row.dataset.succeeded);
    if (at) window.__lags.push(Date.now() / 1000 - at);
  }
}).observe(document.getElementById('live'), {childList: true, subtree: true});
"""


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10_000 / 60, help="tasks per second")
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = 5600 + os.getpid() % 300
        (directory / "celeriac.toml").write_text(
            f'broker = "sqlite:///{directory / "broker.sqlite3"}"\n'
            "[worker]\nconcurrency = 4\npoll_timeout = 0.2\n[events]\nbatch_interval = 0.1\n"
            f'[dashboard]\nport = {port}\nhistory = "{directory / "h.sqlite3"}"\n'
        )
        (directory / "proj.py").write_text(
            textwrap.dedent("""
            from celeriac import Celeriac
            app = Celeriac("proj")

            @app.task
            def noop(i):
                return i
        """)
        )
        group = ProcessGroup(directory, subprocess_env(directory))
        try:
            group.start([sys.executable, "-m", "celeriac", "-A", "proj", "worker", "-E", "-n", "bench@lag"])
            dashboard = group.start(
                [sys.executable, "-m", "celeriac", "dashboard"], ready="dashboard on http"
            )
            base = f"http://127.0.0.1:{port}"
            app = Celeriac("bench", config=str(directory / "celeriac.toml"), env={})
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync"],
                )  # fmt: skip
                page = browser.new_page()
                page.goto(base + "/tasks")
                page.wait_for_selector("#live-status.on")
                page.evaluate(_OBSERVER)
                peak = 0
                sent = 0
                start = time.monotonic()
                while (elapsed := time.monotonic() - start) < options.seconds:
                    due = int(elapsed * options.rate) - sent
                    for _ in range(max(0, due)):
                        app.send_task("proj.noop", (sent,))
                        sent += 1
                    peak = max(peak, _rss_kb(dashboard.pid))
                    time.sleep(0.02)
                time.sleep(3)
                lags = sorted(page.evaluate("window.__lags"))
                browser.close()
            app.close()
            with urllib.request.urlopen(base + "/api/dashboard/tasks?limit=1") as response:
                total = json.loads(response.read())["total"]
        finally:
            group.kill()
    if not lags:
        raise SystemExit("no row seen: the page did not update")

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(p / 100 * len(lags)))]

    print(
        f"sent {sent} tasks in {options.seconds:.0f} s ({sent / options.seconds * 60:.0f}/min); "
        f"dashboard kept {total}; rows seen on the page: {len(lags)}\n"
        f"event-to-screen lag: p50 {pct(50) * 1000:.0f} ms, p99 {pct(99) * 1000:.0f} ms, "
        f"max {lags[-1] * 1000:.0f} ms\n"
        f"dashboard peak RSS: {peak / 1024:.0f} MiB; load average: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
