"""Test support for suites that run against a real RabbitMQ (this plugin's and others').

A suite asks :func:`require_rabbitmq` whether the server answers (skipped with the reason
when not, failed under ``CI=true``), works on a vhost of its own through
:func:`private_vhost`, and deletes what each test declared with :func:`delete_queues` and
:func:`delete_exchanges`. Like the package root, importing this module imports neither pika
nor pytest and connects to nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterable
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pika

__all__ = [
    "DEFAULT_URL",
    "connection_parameters",
    "delete_exchanges",
    "delete_queues",
    "private_vhost",
    "rabbitmqctl",
    "require_rabbitmq",
    "server_url",
]

#: The local RabbitMQ's default vhost, as guest; ``AMQP_URL`` overrides it.
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672//"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_url() -> str:
    """``AMQP_URL``, or :data:`DEFAULT_URL`: the server a test run was pointed at."""
    return os.environ.get("AMQP_URL", DEFAULT_URL)


def connection_parameters(url: str) -> pika.URLParameters:
    """pika's parameters for ``url``, with kombu's vhost convention and short timeouts.

    pika reads ``amqp://host//`` as the vhost ``/`` but ``amqp://host/`` as an empty vhost;
    kombu (and the transport) take both as ``/``, so the tests' own connections must too.
    The timeouts bound a test's wait on a server that stopped answering.
    """
    import pika

    parameters = pika.URLParameters(url)
    path = urllib.parse.urlsplit(url).path
    parameters.virtual_host = urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"
    parameters.socket_timeout = 2
    parameters.blocked_connection_timeout = 5
    return parameters


def rabbitmqctl(*args: str) -> bool:
    """Run ``rabbitmqctl ARGS`` (bounded to 30 s); False when it is missing or failed.

    Only a local server can be administered this way; callers fall back to the URL's vhost.
    """
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        return False
    try:
        done = subprocess.run([binary, *args], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def require_rabbitmq(url: str) -> None:
    """Connect to ``url`` once; skip the test with the reason when that fails (fail under ``CI=true``)."""
    import pika

    try:
        pika.BlockingConnection(connection_parameters(url)).close()
    except Exception as exc:  # any failure to connect means the same thing here
        from celeriac.testing import service_unreachable

        service_unreachable(
            f"RabbitMQ at {url} is unreachable ({exc!r}); set AMQP_URL or run rabbitmq-server -detached"
        )


@contextlib.contextmanager
def private_vhost(url: str, *, prefix: str = "celeriac-test") -> Iterator[str]:
    """``url`` on a new vhost of its own, deleted on leaving; checks the server answers first.

    Tests that share a vhost see each other's queues and exchanges; a vhost per session keeps
    runs (and parallel workers) apart. It is made with ``rabbitmqctl``, so only on a local
    server; elsewhere this yields ``url`` itself, and tests rely on names of their own.

    :param prefix: the start of the vhost's name, which ends in a random token.
    """
    require_rabbitmq(url)
    parts = urllib.parse.urlsplit(url)
    vhost = f"{prefix}-{secrets.token_hex(4)}"
    if parts.hostname not in _LOOPBACK or not rabbitmqctl("add_vhost", vhost):
        yield url
        return
    try:
        rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        base = url[: url.index("/", url.index("//") + 2)]
        yield f"{base}/{urllib.parse.quote(vhost, safe='')}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def delete_queues(url: str, names: Iterable[str]) -> None:
    """Delete the queues ``names`` on ``url``; those that do not exist are passed over."""
    _delete(url, names, exchanges=False)


def delete_exchanges(url: str, names: Iterable[str]) -> None:
    """Delete the exchanges ``names`` on ``url``; those that do not exist are passed over."""
    _delete(url, names, exchanges=True)


def _delete(url: str, names: Iterable[str], *, exchanges: bool) -> None:
    import pika

    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        for name in names:
            # A failed delete closes its channel, so each name gets a fresh one.
            channel = connection.channel()
            with contextlib.suppress(Exception):
                if exchanges:
                    channel.exchange_delete(name)
                else:
                    channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()
    finally:
        connection.close()
