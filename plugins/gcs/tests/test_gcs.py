"""The Google Cloud Storage result store against gcp-storage-emulator (PyPI) on a free port: the
key-value contract, results, chords and expiry through a worker, and the errors for a dead
endpoint and a missing bucket. The emulator checks no credentials, so refused ones are not
tested here."""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac import chord
from celeriac import states
from celeriac.plugin import StoreUnreachableError
from celeriac.testing import check_key_value
from celeriac.testing import free_port
from celeriac.testing import importable
from celeriac.testing import local_server
from celeriac.testing import service_unreachable
from celeriac.testing import worker_thread

MakeApp = Callable[..., Celeriac]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not importable("gcp_storage_emulator"):
        service_unreachable("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    directory = tmp_path_factory.mktemp("gcs")
    port = free_port()
    emulator = Path(sys.executable).parent / "gcp-storage-emulator"
    command = [str(emulator), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with local_server(command, port, log=directory / "gcs.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def url() -> str:
    return f"gs://results-{secrets.token_hex(4)}/some/prefix"


@pytest.fixture
def make_app(endpoint: str, url: str) -> Iterator[MakeApp]:
    apps: list[Celeriac] = []

    def make(**settings: Any) -> Celeriac:
        gcs = {"endpoint_url": endpoint, "create_bucket": True, "project": "test", "timeout": 5.0}
        gcs.update(settings.pop("gcs", {}))
        app = Celeriac(
            "tests",
            broker="memory://",
            result_store=url,
            plugins=[celeriac.testing],
            env={},
            config=False,
            gcs=gcs,
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


class OneAddAtATime:
    """The store's KeyValue with concurrent ``add_member`` calls made one after another.

    gcp-storage-emulator ignores ``ifGenerationMatch``: every conditional write succeeds
    there. Google Cloud Storage refuses a write whose generation no longer matches (412). So
    on the emulator the contract is checked with the adds serialized, and everything else as
    it is.
    """

    def __init__(self, kv: Any) -> None:
        self.kv = kv
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kv, name)

    def add_member(self, key: str, member: str, expires: float | None) -> int:
        with self.lock:
            return int(self.kv.add_member(key, member, expires))


def test_key_value_contract(make_app: MakeApp) -> None:
    kv = make_app().result_store.kv  # type: ignore[attr-defined]
    serialized = OneAddAtATime(kv)
    for name in ("get", "get_many", "set", "delete", "sweep", "close"):
        setattr(serialized, name, getattr(kv, name))  # KeyValue is checked by its methods
    check_key_value(serialized)  # type: ignore[arg-type]


def test_results_chords_and_celerys_layout(make_app: MakeApp, endpoint: str, url: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    app = make_app()

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task
    def fail() -> None:
        raise ValueError("broken on purpose")

    # One task at a time: on the emulator, concurrent chord parts can race (see OneAddAtATime).
    with worker_thread(app, concurrency=1):
        result = double.delay(21)
        assert result.get(timeout=20) == 42
        assert chord([double.s(n) for n in range(20)], total.s()).delay().get(timeout=30) == 380
        with pytest.raises(ValueError, match="broken on purpose"):
            fail.delay().get(timeout=20)
    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    blob = client.bucket(url.split("/")[2]).blob(f"some/prefix/celery-task-meta-{result.id}")
    meta = json.loads(blob.download_as_bytes())  # what Celery's gs:// backend reads
    assert (meta["status"], meta["result"], meta["task_id"]) == ("SUCCESS", 42, result.id)


def test_results_expire_and_are_swept(make_app: MakeApp) -> None:
    app = make_app(result_expires=1.0)

    @app.task
    def one() -> int:
        return 1

    with worker_thread(app, concurrency=1):
        result = one.delay()
        assert result.get(timeout=20) == 1
    deadline = time.monotonic() + 10
    while result.state != states.PENDING:
        assert time.monotonic() < deadline, "the result did not expire"
        time.sleep(0.1)
    assert app.result_store.sweep() >= 1  # type: ignore[attr-defined]


def test_unreachable_endpoint_is_named(make_app: MakeApp, url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = make_app(gcs={"endpoint_url": dead, "timeout": 1.0, "retry_deadline": 1.0})
    with pytest.raises(StoreUnreachableError, match=rf"{url} \(endpoint {dead}\)"):
        app.AsyncResult("nope").state  # noqa: B018 - reading it is the test


def test_missing_bucket_is_named(make_app: MakeApp, url: str) -> None:
    app = make_app(gcs={"create_bucket": False})
    with pytest.raises(StoreUnreachableError, match=rf"{url} .*the bucket does not exist"):
        app.AsyncResult("nope").state  # noqa: B018


def test_an_expired_chord_set_starts_anew(make_app: MakeApp) -> None:
    """A chord outliving result_expires: its expired set (not yet deleted) is not counted on."""
    kv = make_app().result_store.kv  # type: ignore[attr-defined]
    key = f"celeriac-chord-parts-{secrets.token_hex(4)}"
    assert kv.add_member(key, "a", 1.0) == 1
    expired_at = time.time() + 2.0  # a second, rounded up to whole seconds (DynamoDB's ttl)
    while time.time() <= expired_at:  # the entry's own clock, not a synchronisation
        time.sleep(0.05)
    assert kv.add_member(key, "b", 60.0) == 1
    assert kv.add_member(key, "a", 60.0) == 2
    assert kv.add_member(key, "b", 60.0) == 0
    kv.delete(key)
