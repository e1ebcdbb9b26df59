"""Entries kept in the schedule store, edited while beat runs: the API, beat picking the edits
up, and ``celeriac beat schedule`` as a user runs it. On SQLite and on Redis."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac import ConfigError
from celeriac import StoredSchedule
from celeriac._beat.beat import Beat

from .conftest import FakeClock
from .conftest import drain
from .conftest import subprocess_env

MakeApp = Callable[..., Celeriac]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """A store URL and the app settings it needs (a key prefix of its own on Redis)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/beat.sqlite3", {}
        return
    import redis

    url = request.getfixturevalue("redis_url")
    prefix = f"celeriac-test-{secrets.token_hex(6)}:"
    yield url, {"redis": {"key_prefix": prefix, "result_key_prefix": prefix}}
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def test_add_list_remove(make_app: MakeApp, store: tuple[str, dict[str, object]]) -> None:
    url, settings = store
    app = make_app('[beat.schedule.nightly]\ntask = "proj.nightly"\ncron = "0 3 * * *"\n', **settings)
    with StoredSchedule(app, schedule_store=url) as stored:
        entry = stored.add("report", {"task": "proj.report", "every": "30s", "args": [1], "queue": "reports"})
        assert (entry.task, entry.args, entry.queue) == ("proj.report", (1,), "reports")
        assert stored.tables() == {
            "report": {"task": "proj.report", "every": "30s", "args": [1], "queue": "reports"}
        }
        assert [(name, source) for name, source, _ in stored.all_entries()] == [
            ("nightly", str(app.config_file)),
            ("report", "schedule store"),
        ]
        assert stored.remove("report") is True
        assert stored.remove("report") is False
        assert stored.tables() == {}


def test_a_bad_entry_is_refused_naming_it_and_nothing_is_stored(
    make_app: MakeApp, store: tuple[str, dict[str, object]]
) -> None:
    url, settings = store
    app = make_app(**settings)

    @app.task(name="proj.two")
    def two(a: int, b: int) -> None:
        """Two arguments."""

    with StoredSchedule(app, schedule_store=url) as stored:
        with pytest.raises(ConfigError, match=r"beat entry 'x' \(schedule store\): no schedule"):
            stored.add("x", {"task": "proj.report"})
        with pytest.raises(ConfigError, match=r"beat entry 'y' \(schedule store\).*every"):
            stored.add("y", {"task": "proj.report", "every": "soon"})
        with pytest.raises(ConfigError, match=r"beat entry 'z'.*argument"):
            stored.add("z", {"task": "proj.two", "every": 5, "args": [1]})
        assert stored.tables() == {}


def test_a_running_beat_picks_up_added_and_removed_entries(
    make_app: MakeApp, store: tuple[str, dict[str, object]], clock: FakeClock
) -> None:
    url, settings = store
    app = make_app(**settings)
    timer = FakeClock(0.0)  # beat reads the store's entries once a second of this clock
    beat = Beat(app, schedule_store=url, clock=clock, timer=timer)
    beat.tick()
    assert beat.entries == []
    with StoredSchedule(app, schedule_store=url) as stored:
        stored.add("ping", {"task": "proj.ping", "every": 2, "kwargs": {"n": 1}})
        timer.advance(0.5)
        beat.tick()
        assert beat.entries == []  # not read again before its second is up
        timer.advance(0.5)
        beat.tick()
        assert [entry.name for entry in beat.entries] == ["ping"]
        clock.advance(2)
        beat.tick()
        [message] = drain(app)
        assert (message.task, message.kwargs) == ("proj.ping", {"n": 1})
        stored.remove("ping")
        timer.advance(1.0)
        clock.advance(2)
        beat.tick()
        assert beat.entries == [] and drain(app) == []
    beat.close()


def test_a_stored_entry_replaces_a_config_entry_of_the_same_name(
    make_app: MakeApp, store: tuple[str, dict[str, object]], clock: FakeClock
) -> None:
    url, settings = store
    app = make_app('[beat.schedule.ping]\ntask = "proj.old"\nevery = 2\n', **settings)
    with StoredSchedule(app, schedule_store=url) as stored:
        stored.add("ping", {"task": "proj.new", "every": 2})
    beat = Beat(app, schedule_store=url, clock=clock)
    beat.tick()
    clock.advance(2)
    beat.tick()
    assert [m.task for m in drain(app)] == ["proj.new"]
    beat.close()


def test_a_store_without_entries_says_so(make_app: MakeApp) -> None:
    from .conftest import MemoryStorePlugin

    app = make_app(plugins=[MemoryStorePlugin()])
    with pytest.raises(ConfigError, match="cannot keep entries"):
        StoredSchedule(app, schedule_store="memstore://")


@pytest.mark.integration
def test_the_command_line_edits_the_schedule_of_a_running_beat(tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(
        "from celeriac import Celeriac\napp = Celeriac('proj')\n\n@app.task\ndef tick(n):\n    return n\n"
    )
    (tmp_path / "celeriac.toml").write_text('broker = "sqlite:///broker.sqlite3"\n')
    env = subprocess_env(tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "celeriac", "-A", "proj", "beat", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "beat", "-l", "INFO", "--max-interval", "1"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        added = cli("schedule", "add", "ticker", "--task", "proj.tick", "-s", "every=1s", "--args", "[7]")
        assert added.returncode == 0, added.stderr
        refused = cli("schedule", "add", "broken", "--task", "proj.tick", "-s", "every=1s")
        assert refused.returncode == 2, refused  # docs/cli.md: one `error:` line, exit 2
        assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1, refused.stderr
        assert "beat entry 'broken'" in refused.stderr and "missing" in refused.stderr
        app = Celeriac("proj", broker=f"sqlite:///{tmp_path}/broker.sqlite3", env={}, config=False)
        try:
            deadline = time.monotonic() + 20
            sent: list[object] = []
            while len(sent) < 2 and time.monotonic() < deadline:
                deliveries = app.transport.fetch(["celery"], 10, 0.2)
                sent.extend(app.codec.decode_task(d.envelope).args for d in deliveries)
                app.transport.ack(deliveries)
            assert sent[:2] == [(7,), (7,)], log.read_text()
        finally:
            app.close()
        listed = cli("schedule", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)
        assert (row["name"], row["source"], row["table"]["args"]) == ("ticker", "schedule store", [7])
        assert row["last_run_at"] is not None
        removed = cli("schedule", "remove", "ticker")
        assert removed.returncode == 0 and "removed ticker" in removed.stdout
        gone = cli("schedule", "remove", "ticker")
        assert gone.returncode == 2 and gone.stderr.startswith("error: "), gone
        assert "has no entry 'ticker'" in gone.stderr
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    assert "beat entries added: ticker" in log.read_text()
