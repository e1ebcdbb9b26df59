"""Test support for suites that run against a real Redis (this plugin's and others').

A suite asks :func:`require_redis` whether the server answers (skipped with the reason when
not, failed under ``CI=true``) and gives each test a key prefix of its own with
:func:`private_prefix`: tests share one database, so they never flush it and delete only
their own keys. Like the package root, importing this module imports neither redis-py nor
pytest and connects to nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

__all__ = ["DEFAULT_URL", "delete_prefixed", "private_prefix", "require_redis", "server_url", "unreachable"]

#: Database 15 of the local server, which nothing else is expected to use; ``REDIS_URL`` overrides it.
DEFAULT_URL = "redis://127.0.0.1:6379/15"


def server_url() -> str:
    """``REDIS_URL``, or :data:`DEFAULT_URL`: the server a test run was pointed at."""
    return os.environ.get("REDIS_URL", DEFAULT_URL)


def unreachable(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used (it does not answer a PING within 2 s), or None."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {url} is unreachable ({exc}); set REDIS_URL or start redis-server"
    return None


def require_redis(url: str) -> str:
    """``url`` when Redis answers there; otherwise skip the test with the reason (fail under ``CI=true``)."""
    problem = unreachable(url)
    if problem is not None:
        from celeriac.testing import service_unreachable

        service_unreachable(problem)
    return url


def delete_prefixed(url: str, prefix: str) -> None:
    """Delete every key of ``url``'s database that starts with ``prefix``, and only those.

    SCAN rather than KEYS, so a large shared database is not blocked; deletes go in batches
    of 500 to keep each command's argument list bounded.
    """
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@contextlib.contextmanager
def private_prefix(url: str, *, name: str = "celeriac-test") -> Iterator[str]:
    """A key prefix nobody else uses (``name-<token>:``); its keys on ``url`` are deleted on leaving.

    :param name: the start of the prefix, to tell which suite left keys behind.
    """
    prefix = f"{name}-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        delete_prefixed(url, prefix)
