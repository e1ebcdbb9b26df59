"""Real brokers for the interoperability tests: Redis and RabbitMQ on loopback.

``REDIS_URL`` defaults to ``redis://127.0.0.1:6379/15`` and ``AMQP_URL`` to
``amqp://guest:guest@127.0.0.1:5672//``. An unreachable server skips the tests that need it,
with the reason, except under ``CI=true`` where they fail. Each Redis test works under a
key prefix of its own (kombu's ``global_keyprefix`` too, so fan-out channels are private);
on RabbitMQ the session gets a vhost of its own when ``rabbitmqctl`` can make one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator

import pytest

REDIS_DEFAULT = "redis://127.0.0.1:6379/15"
AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672//"


def _need(problem: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (CI=true: these tests must run)")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL", REDIS_DEFAULT)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as exc:
        _need(f"Redis at {url} is unreachable ({exc}); set REDIS_URL or start redis-server")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and only they."""
    import redis

    prefix = f"celeriac-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _rabbitmqctl(*args: str) -> bool:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        return False
    try:
        done = subprocess.run([binary, *args], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The broker URL, on a vhost of this session's own when ``rabbitmqctl`` can make one."""
    import pika

    url = os.environ.get("AMQP_URL", AMQP_DEFAULT)
    parameters = pika.URLParameters(url)
    path = urllib.parse.urlsplit(url).path
    parameters.virtual_host = urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"
    parameters.socket_timeout = 2
    try:
        pika.BlockingConnection(parameters).close()
    except Exception as exc:
        _need(f"RabbitMQ at {url} is unreachable ({exc!r}); set AMQP_URL or run rabbitmq-server -detached")
    parts = urllib.parse.urlsplit(url)
    vhost = f"celeriac-test-{secrets.token_hex(4)}"
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and _rabbitmqctl("add_vhost", vhost):
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        yield f"{url[: url.index('/', url.index('//') + 2)]}/{urllib.parse.quote(vhost, safe='')}"
        _rabbitmqctl("delete_vhost", vhost)
    else:
        yield url
