"""celeriac-filesystem: the KeyValue contract on a real directory, chords counted across
processes, writes that readers never see half-done, expiry and the sweep, and Celery's
filesystem backend reading what celeriac wrote and the reverse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import states
from celeriac.plugin import ConfigError
from celeriac.plugin import KeyValueResultStore
from celeriac.plugin import StoreUnreachableError
from celeriac.testing import check_key_value
from celeriac.testing import worker_thread
from celeriac_filesystem import FilesystemKeyValue
from celeriac_filesystem._kv import directory_of
from celeriac_filesystem._kv import file_name


def make_app(directory: Path, **settings: Any) -> Celeriac:
    return Celeriac(
        "fstests",
        broker="memory://",
        result_store=f"file://{directory}",
        plugins=[celeriac.testing],
        env={},
        config=False,
        **settings,
    )


def test_contract(tmp_path: Path) -> None:
    check_key_value(FilesystemKeyValue("file://x", tmp_path, expires=86400.0))


def test_urls() -> None:
    assert directory_of("file:///var/lib/results") == Path("/var/lib/results")
    assert directory_of("file://localhost/var/lib/results") == Path("/var/lib/results")
    with pytest.raises(ConfigError, match="file:///absolute/path"):
        directory_of("file://")
    assert file_name("celery-task-meta-0d9e7c1e-8f7a-4c65-9a6f-1d2f5e3b7a10").startswith(
        "celery-task-meta-0d9e"
    )
    assert "/" not in file_name("celery-task-meta-../../etc/passwd")
    assert not file_name("../x").startswith(".")


def test_a_directory_that_cannot_be_written_is_named_in_the_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    app = make_app(blocked / "results")
    with pytest.raises(
        StoreUnreachableError, match=r"file://.*file-not-dir/results: the directory cannot be written"
    ):
        app.AsyncResult("x").state  # noqa: B018 - reading the state is the test
    app.close()


def test_tasks_store_and_read_results_as_files(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with worker_thread(app, concurrency=2):
        result = add.delay(2, 3)
        assert result.get(timeout=10) == 5
    stored = json.loads((tmp_path / f"celery-task-meta-{result.id}").read_bytes())
    assert stored["status"] == states.SUCCESS and stored["result"] == 5 and stored["task_id"] == result.id
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")], "temporary files left behind"
    app.close()


ADD_MEMBERS = """
import json, sys
from pathlib import Path
from celeriac_filesystem import FilesystemKeyValue
kv = FilesystemKeyValue("file://x", Path(sys.argv[1]), expires=3600.0)
print(json.dumps([kv.add_member("parts", m, 3600.0) for m in json.loads(sys.argv[2])]))
"""

WRITE_FOREVER = """
import sys
from pathlib import Path
from celeriac_filesystem import FilesystemKeyValue
kv = FilesystemKeyValue("file://x", Path(sys.argv[1]), expires=3600.0)
for n in range(300):
    kv.set("k", bytes([n % 256]) * (256 * 1024), 3600.0)
"""


def test_chord_parts_are_counted_once_across_processes(tmp_path: Path) -> None:
    # Four processes add 100 members each, every member twice (a redelivery): counts 1..400 once.
    members = [f"task-{n}" for n in range(400)]
    shares = [members[i::4] * 2 for i in range(4)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ADD_MEMBERS, str(tmp_path), json.dumps(share)], stdout=subprocess.PIPE
        )
        for share in shares
    ]
    counts = [count for process in processes for count in json.loads(process.communicate(timeout=60)[0])]
    assert sorted(c for c in counts if c) == list(range(1, 401))
    assert counts.count(0) == 400


def test_readers_never_see_a_half_written_value(tmp_path: Path) -> None:
    kv = FilesystemKeyValue("file://x", tmp_path, expires=3600.0)
    writer = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(tmp_path)])
    seen = 0
    try:
        while writer.poll() is None or seen == 0:
            value = kv.get("k")
            if value is not None:
                assert len(value) == 256 * 1024 and value == value[:1] * len(value), "a torn value was read"
                seen += 1
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert seen > 0


def test_results_expire_and_are_swept(tmp_path: Path) -> None:
    app = make_app(tmp_path, result_expires=1.0, filesystem={"sweep_interval": 0.1})
    store = app.result_store
    assert isinstance(store, KeyValueResultStore)

    @app.task
    def echo(x: int) -> int:
        return x

    with worker_thread(app, concurrency=1):
        old = echo.delay(1)
        assert old.get(timeout=10) == 1
        deadline = time.monotonic() + 10
        while old.state != states.PENDING:
            assert time.monotonic() < deadline, "the result did not expire"
            time.sleep(0.05)
        assert (tmp_path / f"celery-task-meta-{old.id}").exists(), "expired but not yet swept"
        assert echo.delay(2).get(timeout=10) == 2  # a write after sweep_interval sweeps
    assert not (tmp_path / f"celery-task-meta-{old.id}").exists()
    app.close()


# --- Celery's filesystem backend ------------------------------------------------------------


def celery_app(directory: Path) -> Any:
    from celery import Celery

    app = Celery("interop", broker="memory://", backend=f"file://{directory}")
    app.conf.result_serializer = "json"
    return app


def test_celery_reads_what_celeriac_wrote_and_the_reverse(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    app = make_app(tmp_path)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom() -> None:
        raise KeyError("missing")

    with worker_thread(app, concurrency=2):
        ok, failed = add.delay(20, 22), boom.delay()
        assert ok.get(timeout=10) == 42
        with pytest.raises(KeyError):
            failed.get(timeout=10)

    celery = celery_app(tmp_path)
    assert celery.AsyncResult(ok.id).get(timeout=5) == 42
    assert celery.AsyncResult(failed.id).state == "FAILURE"
    assert isinstance(celery.AsyncResult(failed.id).result, KeyError)

    # The reverse: Celery's backend stores, celeriac reads.
    celery.backend.store_result("from-celery", {"a": [1, 2]}, "SUCCESS")
    celery.backend.store_result("celery-failed", ValueError("bad value"), "FAILURE")
    assert app.AsyncResult("from-celery").get(timeout=5) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="bad value"):
        app.AsyncResult("celery-failed").get(timeout=5)
    # Celery's files expire as celeriac's do: result_expires after their modification time.
    assert os.stat(tmp_path / "celery-task-meta-from-celery").st_mtime <= time.time()
    app.close()
