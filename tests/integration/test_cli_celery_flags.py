"""Celery's command line on celeriac: worker flags, node name variables, inspect ping, hints."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from celeriac._cli.worker_flags import expand_hostname

from .conftest import WorkerProcess
from .conftest import run_cli

pytestmark = pytest.mark.integration


def test_worker_flags_set_their_keys_and_config_names_the_flag(project: Path) -> None:
    shown = run_cli(
        project,
        "-A",
        "proj",
        "config",
        "--max-tasks-per-child",
        "100",
        "--max-memory-per-child",
        "200000",
        "--autoscale",
        "8,2",
        "--time-limit",
        "30",
        "--soft-time-limit",
        "25",
        "--without-heartbeat",
        "--autoreload",
        "-O",
        "fair",
        "--without-gossip",
    )
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") == 4}
    assert "flag --max-tasks-per-child" in rows["prefork.max_tasks_per_child"]
    assert "100" in rows["prefork.max_tasks_per_child"]
    assert "flag --max-memory-per-child" in rows["prefork.max_memory_per_child"]
    assert '"8,2"' in rows["prefork.autoscale"] and "flag --autoscale" in rows["prefork.autoscale"]
    time_limit = rows["task_defaults.time_limit"]
    assert "30.0" in time_limit and "flag --time-limit" in time_limit
    assert "flag --soft-time-limit" in rows["task_defaults.soft_time_limit"]
    assert "false" in rows["worker.heartbeat"] and "flag --without-heartbeat" in rows["worker.heartbeat"]
    assert "flag --autoreload" in rows["worker.autoreload"]
    assert "--without-gossip: celeriac workers do not gossip" in shown.stderr


def test_config_shows_effective_worker_values_and_no_unset_rows(project: Path) -> None:
    shown = run_cli(project, "-A", "proj", "config", "--json")
    data = json.loads(shown.stdout)
    assert data["worker"]["concurrency"] >= 1
    assert data["worker"]["hostname"].startswith("celeriac@")
    assert data["worker"]["prefetch"] == data["worker"]["concurrency"]
    table = run_cli(project, "-A", "proj", "config").stdout
    assert "default: the number of CPUs" in table
    assert "│ null" not in table


def test_a_node_name_expands_and_inspect_ping_answers(
    project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker("-n", "w1@%h", "--max-tasks-per-child", "10", "--time-limit", "60")
    ping = run_cli(project, "-A", "proj", "inspect", "ping", "--timeout", "5", "--json")
    assert ping.returncode == 0, ping.stderr
    replies = json.loads(ping.stdout)
    assert list(replies) == [expand_hostname("w1@%h")]
    assert "%" not in next(iter(replies))


def test_node_name_variables() -> None:
    host = expand_hostname("%h")
    assert host and "%" not in host
    assert expand_hostname("w1@%n") == f"w1@{host.partition('.')[0]}"
    assert expand_hostname("%d") == host.partition(".")[2]
    assert expand_hostname("100%%") == "100%"
    assert expand_hostname("a%zb") == "a%zb"
    assert host == socket.gethostname()


def test_app_after_the_command_gets_a_hint(project: Path) -> None:
    wrong = run_cli(project, "worker", "-A", "proj")
    assert wrong.returncode == 2
    assert "-A goes before it, as in Celery 5: celeriac -A proj worker" in wrong.stderr


def test_control_help_keeps_each_line_whole(project: Path) -> None:
    shown = run_cli(project, "control", "--help")
    assert "Set a task's rate limit in workers (e.g. 10/s; 0 removes it)." in " ".join(shown.stdout.split())


def test_plugins_lists_every_scheme_whole_on_80_columns(project: Path) -> None:
    listed = run_cli(project, "plugins", COLUMNS="80")
    assert "\N{HORIZONTAL ELLIPSIS}" not in listed.stdout
    assert "rediss+cluster" in listed.stdout and "redis+sentinel" in listed.stdout


def test_logfile_takes_the_log_lines(project: Path) -> None:
    from celeriac.testing import celeriac_command
    from celeriac.testing import process_group
    from celeriac.testing import subprocess_env

    logfile = project / "worker.log"
    with process_group(project, env=subprocess_env(project)) as processes:
        worker = processes.start(celeriac_command("proj", "worker", "-f", str(logfile)), ready=None)
        deadline = time.monotonic() + 30
        while "ready: consuming" not in (logfile.read_text() if logfile.exists() else ""):
            assert worker.proc.poll() is None, worker.output()
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
    assert "ready: consuming" not in worker.output()  # the log went to the file, not stderr
