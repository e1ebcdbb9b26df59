"""Building redis-py clients from a URL and the ``[redis]`` section; redis is imported here only."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from celeriac.errors import ConfigError
from celeriac_redis._config import RedisConfig

if TYPE_CHECKING:
    import redis
    from redis.client import Pipeline
    from redis.client import PubSub

SCHEMES = ("redis", "rediss", "redis+socket")


def make_client(url: str, settings: RedisConfig) -> redis.Redis:
    """A client with its own connection pool, retrying commands after connection errors.

    Every command that fails on a broken connection is retried on a fresh one with an
    exponential back-off, so a Redis restart or failover shorter than the retry budget is
    invisible to callers; after that the error reaches them.

    :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, or
        ``redis+socket:///path/to/socket?db=0`` (kombu's spelling of a Unix socket).
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"{url!r} is not a Redis URL: expected redis://host:port/db, rediss://... "
            "or redis+socket:///path/to/socket"
        )
    if scheme == "redis+socket":
        url = "unix" + url[len(scheme) :]
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_keepalive": settings.socket_keepalive,
        "health_check_interval": settings.health_check_interval,
        "max_connections": settings.max_connections,
        "client_name": settings.client_name,
        "retry": Retry(
            ExponentialBackoff(cap=settings.retry_backoff_max, base=settings.retry_backoff_base),
            settings.retry_attempts,
        ),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError],
    }
    if scheme == "rediss":
        options.update(
            ssl_cert_reqs=settings.ssl_cert_reqs,
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
            ssl_check_hostname=settings.ssl_check_hostname,
        )
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {url!r}: {exc}") from exc


def block_ms(timeout: float, settings: RedisConfig) -> int:
    """Milliseconds a blocking command may wait: within ``timeout`` and under the socket timeout."""
    ceiling = max(settings.socket_timeout - 1.0, 0.1)
    return max(int(min(timeout, ceiling) * 1000), 1)


# redis-py leaves these two unannotated; every call goes through here so that the rest of
# the plugin stays checked.
def command(client: redis.Redis | Pipeline | PubSub, *args: Any) -> Any:
    """``client.execute_command(*args)``: the raw command, for hot paths and replies we parse."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def pubsub(client: redis.Redis) -> PubSub:
    created: PubSub = client.pubsub()  # type: ignore[no-untyped-call]
    return created
