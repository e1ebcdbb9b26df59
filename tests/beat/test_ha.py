"""Several beat instances: one sends; when it stops or dies another takes over in time, and
every run is sent exactly once.

Threads in one process show the hand-over on a graceful stop; separate processes, one of them
killed with SIGKILL, show it on a crash, on SQLite (one host) and on Redis.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac._beat.beat import Beat
from celeriac.plugin import TaskMessage
from celeriac.testing import wait_for

from .conftest import beat_plugins
from .conftest import drain
from .conftest import run_at
from .conftest import subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MakeApp = Callable[..., Celeriac]


def assert_each_run_once(messages: list[TaskMessage], step: float = 1.0) -> list[datetime]:
    """Every scheduled time from the first to the last, one step apart, each sent once."""
    times = sorted(datetime.fromisoformat(run_at(m)) for m in messages)
    assert len(times) == len(set(times)), f"a run was sent twice: {times}"
    gaps = [round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(times)]
    assert all(gap == step for gap in gaps), f"a run was skipped: gaps {gaps}"
    return times


# --- threads ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _running(beat: Beat) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=beat.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)


def test_two_instances_in_threads_hand_over_on_stop(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(
        "[beat]\nlease = 2.0\nrenew_interval = 0.3\n"
        '[beat.schedule.tick]\ntask = "proj.tick"\nevery = "0.5s"\n',
        broker=f"sqlite:///{tmp_path}/broker.sqlite3",
    )
    beats = [Beat(app, owner="first"), Beat(app, owner="second")]
    with _running(beats[0]) as stop_first, _running(beats[1]) as stop_second:
        wait_for(lambda: any(beat.is_leader for beat in beats), 5, "a leader")
        first_leads = beats[0].is_leader
        leader, standby = beats if first_leads else beats[::-1]
        wait_for(lambda: leader.sent >= 4, 5, "four runs")
        assert standby.sent == 0 and not standby.is_leader
        (stop_first if first_leads else stop_second).set()
        stopped = time.monotonic()
        wait_for(lambda: standby.is_leader, 5, "the standby to lead")
        assert time.monotonic() - stopped < 1.5  # released on stop: no wait for the lease
        wait_for(lambda: standby.sent >= 3, 5, "three more runs")
    assert_each_run_once(drain(app), step=0.5)


# --- processes ------------------------------------------------------------------------------

PROJ = """
from celeriac import Celeriac
app = Celeriac("proj")
"""
MAIN = """
import logging, sys
from celeriac._beat.run import run_beat
import proj
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
sys.exit(run_beat(proj.app))
"""


class BeatProcess:
    def __init__(self, project: Path, index: int) -> None:
        self.log = project / f"beat-{index}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "beat_main.py"],
                cwd=project,
                env=subprocess_env(project),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def leads(self) -> bool:
        return "took the lock" in self.output()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def start_beats(tmp_path: Path) -> Iterator[Callable[[str], tuple[BeatProcess, BeatProcess]]]:
    started: list[BeatProcess] = []

    def start(config: str) -> tuple[BeatProcess, BeatProcess]:
        (tmp_path / "proj.py").write_text(textwrap.dedent(PROJ))
        (tmp_path / "beat_main.py").write_text(textwrap.dedent(MAIN))
        (tmp_path / "celeriac.toml").write_text(textwrap.dedent(config))
        pair = BeatProcess(tmp_path, 0), BeatProcess(tmp_path, 1)
        started.extend(pair)
        return pair

    yield start
    for beat in started:
        beat.stop(signal.SIGKILL)


def _kill_the_leader_and_check(pair: tuple[BeatProcess, BeatProcess], client: Celeriac, limit: float) -> None:
    wait_for(lambda: any(beat.leads for beat in pair), 15, "a leader")
    leader, standby = pair if pair[0].leads else pair[::-1]
    wait_for(lambda: leader.output().count("sent proj.tick") >= 3, 10, "three runs from the leader")
    assert "sent" not in standby.output() and not standby.leads
    leader.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: standby.leads, limit + 2, "the standby to take over")
    took = time.monotonic() - killed
    assert took < limit, f"took over after {took:.1f} s"
    count = standby.output().count("sent proj.tick")
    wait_for(lambda: standby.output().count("sent proj.tick") >= count + 2, 10, "runs from the new leader")
    standby.stop()
    messages = drain(client)
    times = [datetime.fromisoformat(run_at(m)) for m in messages]
    if len(times) != len(set(times)):
        # The one documented window: killed between publishing and recording a run. The new
        # leader says so and sends it again, with the same task id.
        assert "claimed and not recorded as sent" in standby.output()
        by_time: dict[datetime, set[str]] = {}
        for message, when in zip(messages, times, strict=True):
            by_time.setdefault(when, set()).add(message.id)
        assert all(len(ids) == 1 for ids in by_time.values())
        messages = list({run_at(m): m for m in messages}.values())
    assert_each_run_once(messages)


def test_processes_on_sqlite_leader_killed(
    tmp_path: Path, start_beats: Callable[[str], tuple[BeatProcess, BeatProcess]]
) -> None:
    broker = f"sqlite:///{tmp_path}/broker.sqlite3"
    # The default lease (5 s, renewed every 1.5 s): the documented take-over, under 10 s.
    pair = start_beats(f'broker = "{broker}"\n[beat.schedule.tick]\ntask = "proj.tick"\nevery = "1s"\n')
    client = Celeriac("client", broker=broker, plugins=beat_plugins(), env={}, config=False)
    try:
        _kill_the_leader_and_check(pair, client, limit=8.0)
    finally:
        client.close()


def test_processes_on_redis_leader_killed(
    redis_url: str, start_beats: Callable[[str], tuple[BeatProcess, BeatProcess]]
) -> None:
    import redis

    prefix = f"celeriac-test-{secrets.token_hex(6)}:"
    pair = start_beats(
        f'broker = "{redis_url}"\n[redis]\nkey_prefix = "{prefix}"\nresult_key_prefix = "{prefix}"\n'
        '[beat]\nlease = 2.0\nrenew_interval = 0.5\n[beat.schedule.tick]\ntask = "proj.tick"\nevery = "1s"\n'
    )
    client = Celeriac(
        "client",
        broker=redis_url,
        plugins=beat_plugins(),
        env={},
        config=False,
        redis={"key_prefix": prefix, "result_key_prefix": prefix},
    )
    keys = redis.Redis.from_url(redis_url)
    try:
        _kill_the_leader_and_check(pair, client, limit=3.5)
    finally:
        client.close()
        for key in keys.scan_iter(match=f"{prefix}*"):
            keys.delete(key)
        keys.close()
