"""The command line as a user runs it, against a project on a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import WorkerProcess
from .conftest import run_cli

pytestmark = pytest.mark.integration


def test_call_and_result(project: Path, start_worker: Callable[..., WorkerProcess]) -> None:
    start_worker()
    sent = run_cli(
        project, "-A", "proj", "call", "proj.add", "--args", "[20, 22]", "--wait", "--timeout", "20"
    )
    assert sent.returncode == 0, sent.stderr
    task_id, value = sent.stdout.split()
    assert value == "42"
    shown = run_cli(project, "-A", "proj", "result", task_id)
    assert shown.stdout.strip() == "SUCCESS 42"


def test_call_wait_exits_1_when_the_task_fails(
    project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker()
    sent = run_cli(
        project, "-A", "proj", "call", "proj.add", "--args", '[1, "x"]', "--wait", "--timeout", "20"
    )
    assert sent.returncode == 1, sent
    assert "TypeError" in sent.stdout and not sent.stderr


def test_call_rejects_bad_json(project: Path) -> None:
    result = run_cli(project, "call", "proj.add", "--args", "[1,")
    assert result.returncode == 2
    assert "--args" in result.stderr and "not valid JSON" in result.stderr


def test_purge(project: Path) -> None:
    for _ in range(3):
        assert run_cli(project, "call", "proj.noop").returncode == 0
    purged = run_cli(project, "purge", "-f")
    assert purged.stdout.strip() == "celery: purged 3 messages"


def test_unknown_task_is_listed_in_dead_letters(
    project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker()
    sent = run_cli(project, "call", "proj.missing", "--wait", "--timeout", "20")
    assert "NotRegisteredError" in sent.stdout
    assert sent.returncode == 1, sent  # not a success
    listed = run_cli(project, "dead-letters", "list")
    assert "proj.missing" in listed.stdout
    assert "unregistered task" in listed.stdout


def test_dead_letters_purge_asks_then_deletes(
    project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker()
    for _ in range(2):
        assert "NotRegisteredError" in run_cli(project, "call", "proj.missing", "--wait").stdout
    kept = run_cli(project, "dead-letters", "purge", "--queue", "celery", input="n\n")
    assert kept.returncode == 1 and "Delete the dead letters of queue celery for good?" in kept.stdout
    assert run_cli(project, "dead-letters", "list").stdout.count("unregistered task") == 2
    assert run_cli(project, "dead-letters", "purge", "--queue", "other", "--yes").stdout == (
        "purged 0 dead letters\n"
    )
    purged = run_cli(project, "dead-letters", "purge", "--yes")
    assert (purged.returncode, purged.stdout) == (0, "purged 2 dead letters\n"), purged.stderr
    assert run_cli(project, "dead-letters", "list").stdout.strip() == "no dead letters"


LEGACY = """
from celeriac import Celeriac
from celeriac.plugin import TransportSpec, hookimpl
from celeriac.testing import MemoryTransport


class Legacy:
    \"\"\"A transport of before the DeadLetterPurger capability: the Transport methods only.\"\"\"

    def __init__(self, url, config):
        self.inner = MemoryTransport()

    def __getattr__(self, name):
        if name == "purge_dead_letters":
            raise AttributeError(name)
        return getattr(self.inner, name)


class Plugin:
    @hookimpl
    def celeriac_add_transports(self):
        return [TransportSpec(schemes=("legacy",), factory=Legacy)]


app = Celeriac("legacy", broker="legacy://", plugins=[Plugin()], config=False)
"""


def test_dead_letters_purge_names_a_transport_that_cannot(project: Path) -> None:
    (project / "legacy.py").write_text(LEGACY)
    refused = run_cli(project, "-A", "legacy", "dead-letters", "purge", "--yes")
    assert refused.returncode == 2
    assert "the legacy transport cannot purge dead letters" in refused.stderr


def test_config_shows_values_and_sources(project: Path) -> None:
    result = run_cli(project, "config", CELERIAC_WORKER__CONCURRENCY="7")
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "sqlite:///broker.sqlite3" in out and "celeriac.toml" in out
    assert "worker.concurrency" in out and "env CELERIAC_WORKER__CONCURRENCY" in out
    as_json = json.loads(run_cli(project, "config", "--json").stdout)
    assert as_json["visibility_timeout"] == 2.0


def test_config_error_exits_2_with_a_clear_message(project: Path) -> None:
    (project / "celeriac.toml").write_text('[worker]\nconcurrency = "lots"\n')
    result = run_cli(project, "config")
    assert result.returncode == 2
    assert "key 'worker.concurrency' = 'lots': expected int" in result.stderr
    assert "celeriac.toml" in result.stderr


def test_worker_graph(project: Path) -> None:
    result = run_cli(project, "-A", "proj", "worker", "--graph")
    assert result.returncode == 0
    assert '"kernel.connection" -> "kernel.consumer";' in result.stdout


def test_plugins_lists_what_each_provides(project: Path) -> None:
    result = run_cli(project, "plugins")
    assert result.returncode == 0, result.stderr
    for expected in (
        "sqlite",
        "transport sqlite",
        "result store sqlite",
        "serializer json",
        "pool threads",
        "pool solo",
    ):
        assert expected in result.stdout


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Path:
    """A distribution whose plugin module fails to import, put on PYTHONPATH."""
    site = tmp_path / "site"
    dist = site / "celeriac_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: celeriac-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[celeriac.plugins]\nbroken = celeriac_broken\n")
    (site / "celeriac_broken.py").write_text("import no_such_dependency_xyz\n")
    return site


def test_broken_plugin_stops_startup_naming_it(project: Path, broken_plugin: Path) -> None:
    result = run_cli(project, "config", extra_path=broken_plugin)
    assert result.returncode == 2
    assert "plugin 'broken'" in result.stderr
    assert "No module named 'no_such_dependency_xyz'" in result.stderr
    listing = run_cli(project, "plugins", extra_path=broken_plugin)
    assert listing.returncode == 1
    assert "failed broken" in listing.stdout
    assert "sqlite" in listing.stdout  # the others are still listed


def test_broken_plugin_can_be_disabled_or_skipped(project: Path, broken_plugin: Path) -> None:
    config = project / "celeriac.toml"
    base = config.read_text()
    for plugins_table in ('[plugins]\ndisable = ["broken"]\n', "[plugins]\nstrict = false\n"):
        config.write_text(base + plugins_table)
        result = run_cli(project, "config", extra_path=broken_plugin)
        assert result.returncode == 0, result.stderr


def test_worker_without_app_uses_the_app_of_imports(
    project: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    config = project / "celeriac.toml"
    config.write_text(
        config.read_text().replace("visibility_timeout", 'imports = ["proj"]\nvisibility_timeout')
    )
    log = project / "plain.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env["PYTHONPATH"] = str(project)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "worker"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        sent = run_cli(project, "call", "proj.add", "--args", "[1, 2]", "--wait", "--timeout", "20")
        assert sent.stdout.split()[-1] == "3", log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_app_from_the_environment(project: Path) -> None:
    result = run_cli(project, "worker", "--graph", CELERIAC_APP="proj")
    assert result.returncode == 0, result.stderr
    assert "kernel.consumer" in result.stdout


def test_error_text_with_brackets_is_printed_whole(project: Path) -> None:
    (project / "celeriac.toml").write_text('[plugins]\nenable = ["nope"]\n')
    result = run_cli(project, "config")
    assert result.returncode == 2
    assert "[plugins] names plugins that are not installed: nope" in result.stderr


def test_config_option_reaches_an_imported_app(project: Path) -> None:
    (project / "prod.toml").write_text('broker = "sqlite:///prod.sqlite3"\n')
    result = run_cli(project, "-A", "proj", "--config", "prod.toml", "config")
    assert result.returncode == 0, result.stderr
    assert "sqlite:///prod.sqlite3" in result.stdout
    assert "# file: prod.toml" in result.stdout


def test_status_inspect_and_control(project: Path, start_worker: Callable[..., WorkerProcess]) -> None:
    start_worker("-n", "cli@test")
    status = run_cli(project, "status", "--timeout", "2")
    assert status.returncode == 0, status.stderr
    assert "cli@test: OK" in status.stdout
    assert "1 node online." in status.stdout
    registered = run_cli(project, "-A", "proj", "inspect", "registered", "--json", "--timeout", "2")
    assert "proj.add" in json.loads(registered.stdout)["cli@test"]
    limited = run_cli(project, "control", "rate_limit", "proj.add", "5/s", "--timeout", "2")
    assert "rate limit of proj.add set to 5/s" in limited.stdout
    revoked = run_cli(
        project, "control", "revoke", "t-1", "t-2", "--json", "-d", "cli@test", "--timeout", "2"
    )
    assert json.loads(revoked.stdout) == {"cli@test": {"ok": "tasks t-1, t-2 flagged as revoked"}}
    nobody = run_cli(project, "inspect", "stats", "-d", "gone@host", "--timeout", "0.5")
    assert nobody.returncode == 1
    assert "no reply" in nobody.stderr
