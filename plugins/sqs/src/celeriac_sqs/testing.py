"""Test support for suites that run against SQS: moto's server, started on a free port.

:func:`moto_server` starts ``moto.server`` (from PyPI, a test requirement) on a free loopback
port and kills it by PID afterwards; it serves SQS, SNS, S3 and DynamoDB. :data:`AWS_ENV`
holds the fake credentials a test sets, so nothing of the developer's AWS setup is used.
Like the package root, importing this module imports neither boto3 nor moto.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["AWS_ENV", "moto_server", "private_prefix", "sqs_settings"]

#: Credentials and region for tests: never the developer's (no config or credentials file).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # A client given no endpoint goes nowhere (the discard port on loopback), never to AWS.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


@contextlib.contextmanager
def moto_server(directory: Path, *, authenticate: bool = False) -> Iterator[str]:
    """moto's server on a free 127.0.0.1 port; yields its endpoint URL.

    :param directory: where its log goes.
    :param authenticate: check credentials as AWS does (moto's IAM emulation), so unknown
        keys are refused; otherwise any key is accepted.
    """
    from celeriac.testing import free_port
    from celeriac.testing import importable
    from celeriac.testing import local_server
    from celeriac.testing import service_unreachable

    if not importable("moto.server"):
        service_unreachable("moto's server is not installed (pip install 'moto[server]')")
    port = free_port()
    env = {**os.environ, **AWS_ENV}
    if authenticate:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with local_server(command, port, log=directory / f"moto-{port}.log", env=env):
        yield f"http://127.0.0.1:{port}"


def private_prefix(name: str = "t") -> str:
    """A queue-name prefix nobody else uses (``<name><token>-``)."""
    return f"{name}{secrets.token_hex(5)}-"


def sqs_settings(endpoint: str, prefix: str, **extra: object) -> dict[str, object]:
    """The ``[sqs]`` section (as keywords for ``Celeriac(sqs=...)``) of a test on ``endpoint``."""
    return {"endpoint_url": endpoint, "queue_prefix": prefix, "region": "us-east-1", **extra}
