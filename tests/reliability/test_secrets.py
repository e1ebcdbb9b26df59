"""No broker or result-store password in what a worker and the CLI print: banner, logs, replies, events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.testing import subprocess_env
from tests.reliability.conftest import WorkerProcess
from tests.reliability.own_redis import OwnRedis

SECRET = "s3cretPa55word"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path, password=SECRET)
    redis.start()
    yield redis
    redis.stop()


def run(project: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "proj", *args],
        cwd=project,
        env=subprocess_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_no_password_in_banner_logs_replies_events_or_errors(tmp_path: Path, server: OwnRedis) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "proj.py").write_text(
        textwrap.dedent(
            """
            from celeriac import Celeriac
            app = Celeriac("proj")

            @app.task
            def boom():
                raise ValueError("nope")
            """
        )
    )
    (project / "celeriac.toml").write_text(
        f'broker = "{server.url(3)}"\nresult_store = "{server.url(4)}"\n'
        f'[redis]\nkey_prefix = "secrets-test:"\n[worker]\npoll_timeout = 0.2\n'
    )
    log = project / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celeriac",
                "-A",
                "proj",
                "worker",
                "-P",
                "threads",
                "-c",
                "1",
                "-l",
                "debug",
                "-E",
            ],
            cwd=project,
            env=subprocess_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(proc, log)
    try:
        worker.wait_ready()
        events = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "proj", "events", "--dump", "--duration", "8"],
            cwd=project,
            env=subprocess_env(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert events.stdout is not None
        assert "listening" in events.stdout.readline()  # subscribed: nothing sent from now on is missed
        outputs = [run(project, "call", "proj.boom", "--wait", "--timeout", "10")]
        outputs.append(run(project, "inspect", "conf"))
        outputs.append(run(project, "status"))
        outputs.append(run(project, "config"))
        rest, _ = events.communicate(timeout=30)
        dumped = rest
        printed = "\n".join(result.stdout + result.stderr for result in outputs)
        assert "broker" in outputs[1].stdout, outputs[1]  # inspect conf answered
        assert "task-failed" in dumped, dumped  # events flowed while the task failed
        app = Celeriac("check", broker=server.url(3), config=False)
        texts = {"cli": printed, "events": dumped, "repr": repr(app)}
        app.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    texts["worker"] = worker.output()
    assert "redis://:***@127.0.0.1" in texts["worker"]  # the banner names the broker, masked
    for where, text in texts.items():
        assert SECRET not in text, f"{where} shows the password:\n{text}"
