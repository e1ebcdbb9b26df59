"""Two apps on one Redis server: remote control and events stay inside their own database and prefix.

Pub/sub channels are server-wide, whatever the database, so each app's channel names carry
its database and key prefix. Each case runs two real workers (one per app) and the CLI of
the first app against them.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from celeriac.testing import celeriac_command
from celeriac.testing import process_group
from celeriac.testing import subprocess_env

from .conftest import RedisServer
from .conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TASKS = """
from celeriac import Celeriac
app = Celeriac("proj")

@app.task
def add(x, y):
    return x + y
"""

# (layout, db of app A, db of app B, prefix of A, prefix of B)
CASES = {
    "streams-db": ("streams", 1, 2, "app:", "app:"),
    "streams-prefix": ("streams", 1, 1, "one:", "two:"),
    "kombu-db": ("kombu", 1, 2, "", ""),
    "kombu-prefix": ("kombu", 1, 1, "one:", "two:"),
}


def _project(directory: Path, url: str, layout: str, prefix: str, marker: float) -> Path:
    directory.mkdir()
    (directory / "proj.py").write_text(textwrap.dedent(TASKS))
    prefixes = f'kombu_global_keyprefix = "{prefix}"\n' if layout == "kombu" else f'key_prefix = "{prefix}"\n'
    (directory / "celeriac.toml").write_text(
        f'broker = "{url}"\nresult_store = ""\nvisibility_timeout = {marker}\n'
        '[plugins]\nenable = ["redis", "json", "threads", "events"]\n'
        "[worker]\npoll_timeout = 0.2\n"
        f'[redis]\nlayout = "{layout}"\n{prefixes}'
    )
    return directory


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        celeriac_command("proj", *args),
        cwd=project,
        env=subprocess_env(project),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_control_and_events_stay_inside_their_app(
    tmp_path: Path, redis_server: RedisServer, case: str
) -> None:
    layout, db_a, db_b, prefix_a, prefix_b = CASES[case]
    base = f"redis://127.0.0.1:{redis_server.port}"
    one = _project(tmp_path / "one", f"{base}/{db_a}", layout, prefix_a, 1234.5)
    two = _project(tmp_path / "two", f"{base}/{db_b}", layout, prefix_b, 4321.5)
    with process_group(one) as first, process_group(two) as second:
        worker_a = first.start(
            celeriac_command("proj", "worker", "-P", "threads", "-c", "1", "-n", "a@scoping", "-E")
        )
        worker_b = second.start(
            celeriac_command("proj", "worker", "-P", "threads", "-c", "1", "-n", "b@scoping", "-E")
        )
        # Both answer their own app: the check below could fail.
        assert "b@scoping" in _cli(two, "status").stdout

        status = _cli(one, "status")
        assert "a@scoping" in status.stdout, status
        assert "b@scoping" not in status.stdout, status

        conf = _cli(one, "inspect", "conf")
        assert "1234.5" in conf.stdout, conf
        assert "4321.5" not in conf.stdout and "b@scoping" not in conf.stdout, conf

        # Both workers send a heartbeat every 2 s: five seconds hear some of each.
        dump = _cli(one, "events", "--dump", "--duration", "5")
        assert '"hostname": "a@scoping"' in dump.stdout, dump
        assert "b@scoping" not in dump.stdout, dump

        shutdown = _cli(one, "control", "shutdown")
        assert shutdown.returncode == 0, shutdown
        wait_for(lambda: worker_a.proc.poll() is not None, 20, "worker a stops")
        assert worker_b.proc.poll() is None
        assert "b@scoping" in _cli(two, "status").stdout


def test_second_worker_with_the_same_name_warns(tmp_path: Path, redis_server: RedisServer) -> None:
    project = _project(tmp_path / "one", f"redis://127.0.0.1:{redis_server.port}/3", "streams", "p:", 60.0)
    with process_group(project) as processes:
        command = celeriac_command("proj", "worker", "-P", "threads", "-c", "1", "-n", "same@scoping")
        first = processes.start(command)
        second = processes.start(command)
        other = processes.start(celeriac_command("proj", "worker", "-P", "threads", "-n", "other@scoping"))
        warning = "another worker named same@scoping is already running"
        wait_for(lambda: warning in second.output(), 10, "the warning")
        assert warning not in first.output()
        assert "already running" not in other.output()
