"""An SQS of our own: moto's server on a free port for the session, a queue prefix per test."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

import celeriac.testing
from celeriac import Celeriac
from celeriac_sqs.testing import AWS_ENV
from celeriac_sqs.testing import moto_server
from celeriac_sqs.testing import private_prefix
from celeriac_sqs.testing import sqs_settings

MakeApp = Callable[..., Celeriac]


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials from the environment, as boto3's chain reads them; nothing of the developer's."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def prefix() -> str:
    return private_prefix()


@pytest.fixture
def sqs(endpoint: str, prefix: str) -> Any:
    """A boto3 client on the emulator, to look past the transport."""
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def make_app(endpoint: str, prefix: str) -> Iterator[MakeApp]:
    """Apps on the emulator under this test's prefix, closed afterwards."""
    apps: list[Celeriac] = []

    def make(*, sqs: dict[str, Any] | None = None, **settings: Any) -> Celeriac:
        settings.setdefault("visibility_timeout", 30.0)
        app = Celeriac(
            "tests",
            broker="sqs://",
            result_store="memory://",
            plugins=[celeriac.testing],
            env={},
            config=False,
            sqs=sqs_settings(endpoint, prefix, **(sqs or {})),
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
