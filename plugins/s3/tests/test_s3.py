"""The S3 result store against moto's server (started on a free port): the key-value contract,
results, chords and expiry through a worker, and the errors for a dead endpoint and bad keys."""

from __future__ import annotations

import json
import os
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

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # A client given no endpoint goes nowhere (the discard port on loopback), never to AWS.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}
MakeApp = Callable[..., Celeriac]


def moto(directory: Path, **extra: str) -> Any:
    if not importable("moto.server"):
        service_unreachable("moto's server is not installed (pip install 'moto[server]')")
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return local_server(
        command, port, log=directory / f"moto-{port}.log", env={**os.environ, **AWS_ENV, **extra}
    )


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto(tmp_path_factory.mktemp("moto")) as server:
        yield f"http://127.0.0.1:{server.log.stem.split('-')[1]}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def url() -> str:
    return f"s3://results-{secrets.token_hex(4)}/some/prefix"


@pytest.fixture
def make_app(endpoint: str, url: str) -> Iterator[MakeApp]:
    apps: list[Celeriac] = []

    def make(**settings: Any) -> Celeriac:
        s3 = {
            "endpoint_url": endpoint,
            "create_bucket": True,
            "region": "us-east-1",
            **settings.pop("s3", {}),
        }
        app = Celeriac(
            "tests",
            broker="memory://",
            result_store=url,
            plugins=[celeriac.testing],
            env={},
            config=False,
            s3=s3,
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


class OneAddAtATime:
    """The store's KeyValue with concurrent ``add_member`` calls made one after another.

    moto checks a write's condition (``If-Match``, ``If-None-Match``) and then writes, without
    a lock between the two: concurrent conditional writes can all succeed there (seen: two
    chord parts both counted 37th). Amazon S3 lets exactly one of them succeed. So on moto
    the contract is checked with the adds serialized, and everything else as it is.
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
    import boto3

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

    # One task at a time: on moto, concurrent chord parts can race (see OneAddAtATime).
    with worker_thread(app, concurrency=1):
        result = double.delay(21)
        assert result.get(timeout=20) == 42
        assert chord([double.s(n) for n in range(20)], total.s()).delay().get(timeout=30) == 380
        with pytest.raises(ValueError, match="broken on purpose"):
            fail.delay().get(timeout=20)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = url.split("/")[2]
    body = s3.get_object(Bucket=bucket, Key=f"some/prefix/celery-task-meta-{result.id}")["Body"].read()
    meta = json.loads(body)  # what Celery's S3 backend reads under its base_path
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
    app = make_app(s3={"endpoint_url": dead, "max_attempts": 1, "connect_timeout": 1.0})
    with pytest.raises(StoreUnreachableError, match=rf"{url} \(endpoint {dead}\)"):
        app.AsyncResult("nope").state  # noqa: B018 - reading it is the test


def test_refused_credentials_are_named(
    tmp_path: Path, make_app: MakeApp, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with moto(tmp_path, INITIAL_NO_AUTH_ACTION_COUNT="0") as server:
        port = server.log.stem.split("-")[1]
        app = make_app(s3={"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1})
        with pytest.raises(StoreUnreachableError, match=r"credentials were refused") as info:
            app.AsyncResult("nope").state  # noqa: B018
    assert url in str(info.value) and "not-the-secret" not in str(info.value)


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


def test_celery_reads_the_results(make_app: MakeApp, endpoint: str, url: str) -> None:
    """Celery's own S3 backend, on the same bucket and base path, reads what celeriac stored."""
    celery = pytest.importorskip("celery")
    app = make_app()

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    def fail() -> None:
        raise ValueError("broken on purpose")

    with worker_thread(app, concurrency=1):
        done, failed = double.delay(21), fail.delay()
        assert done.get(timeout=20) == 42
        with pytest.raises(ValueError):
            failed.get(timeout=20)
    reader = celery.Celery("reader", broker="memory://", backend="s3")
    reader.conf.update(
        s3_bucket=url.split("/")[2],
        s3_base_path="some/prefix/",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    assert reader.AsyncResult(done.id).get(timeout=10) == 42
    with pytest.raises(ValueError, match="broken on purpose"):
        reader.AsyncResult(failed.id).get(timeout=10)
