"""The Azure Blob result store against Azurite (npm, ``make emulators``) on a free port: the
key-value contract, results, chords and expiry through a worker, and the errors for a dead
endpoint, a wrong account key and a missing container."""

from __future__ import annotations

import json
import os
import secrets
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
from celeriac.testing import local_server
from celeriac.testing import service_unreachable
from celeriac.testing import worker_thread

MakeApp = Callable[..., Celeriac]
ROOT = Path(__file__).resolve().parents[3]
#: Azurite's well-known development account: public, documented, the same in every Azurite.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(endpoint: str, key: str = KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    azurite = Path(os.environ.get("AZURITE_BLOB", ROOT / ".cache/npm/node_modules/.bin/azurite-blob"))
    if not azurite.exists():
        service_unreachable(f"Azurite is not installed at {azurite}: run make emulators")
    directory = tmp_path_factory.mktemp("azurite")
    port = free_port()
    command = [
        str(azurite),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
        *("--location", str(directory), "--skipApiVersionCheck", "--silent"),
    ]
    with local_server(command, port, log=directory / "azurite.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def url() -> str:
    return f"azureblob://results-{secrets.token_hex(4)}/some/prefix"


@pytest.fixture
def make_app(endpoint: str, url: str) -> Iterator[MakeApp]:
    apps: list[Celeriac] = []

    def make(**settings: Any) -> Celeriac:
        azureblob = {
            "connection_string": connection_string(endpoint),
            "create_container": True,
            "timeout": 5.0,
        }
        azureblob.update(settings.pop("azureblob", {}))
        app = Celeriac(
            "tests",
            broker="memory://",
            result_store=url,
            plugins=[celeriac.testing],
            env={},
            config=False,
            azureblob=azureblob,
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_key_value_contract(make_app: MakeApp) -> None:
    check_key_value(make_app().result_store.kv)  # type: ignore[attr-defined]


def test_results_chords_and_celerys_layout(make_app: MakeApp, endpoint: str, url: str) -> None:
    from azure.storage.blob import BlobServiceClient

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

    with worker_thread(app, concurrency=4):
        result = double.delay(21)
        assert result.get(timeout=20) == 42
        assert chord([double.s(n) for n in range(20)], total.s()).delay().get(timeout=30) == 380
        with pytest.raises(ValueError, match="broken on purpose"):
            fail.delay().get(timeout=20)
    service = BlobServiceClient.from_connection_string(connection_string(endpoint))
    container = service.get_container_client(url.split("/")[2])
    meta = json.loads(container.download_blob(f"some/prefix/celery-task-meta-{result.id}").readall())
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
    app = make_app(azureblob={"connection_string": connection_string(dead), "timeout": 1.0, "retries": 0})
    with pytest.raises(StoreUnreachableError, match=rf"{url} \(endpoint {dead}/{ACCOUNT}\)"):
        app.AsyncResult("nope").state  # noqa: B018 - reading it is the test


def test_wrong_account_key_is_named(make_app: MakeApp, endpoint: str, url: str) -> None:
    wrong = "d3Jvbmcga2V5IG9mIHRoZSByaWdodCBsZW5ndGggZm9yIGEgc3RvcmFnZSBhY2NvdW50IGtleSE="
    app = make_app(
        azureblob={"connection_string": connection_string(endpoint, wrong), "create_container": False}
    )
    with pytest.raises(StoreUnreachableError, match="credentials were refused") as info:
        app.AsyncResult("nope").state  # noqa: B018
    assert url in str(info.value) and wrong not in str(info.value)


def test_missing_container_is_named(make_app: MakeApp, url: str) -> None:
    app = make_app(azureblob={"create_container": False})
    with pytest.raises(StoreUnreachableError, match=rf"{url} .*the container does not exist"):
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
