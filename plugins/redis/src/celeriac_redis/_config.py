"""The ``[redis]`` configuration section."""

from __future__ import annotations

from typing import Literal

from attrs import field
from attrs import frozen


def _steps(value: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return tuple(sorted({min(max(int(step), 0), 9) for step in value} | {0}))


@frozen(kw_only=True)
class RedisConfig:
    """``[redis]``: how the Redis transport, result store and schedule store use the server.

    :param layout: ``"streams"`` (the default): one Redis stream per queue and priority band,
        read through a consumer group, with leases, redelivery counts and dead letters kept
        by Redis. ``"kombu"``: the lists kombu's Redis transport uses, so that Celery clients
        and workers share queues with celeriac.
    :param key_prefix: prefix of every key celeriac creates for queues (streams layout) and of
        its own bookkeeping keys (both layouts). Queue keys carry the queue name as a Redis
        Cluster hash tag: ``<prefix>{<queue>}:<band>``.
    :param group: the consumer group every worker of the streams layout reads through.
    :param priority_steps: the priority bands (0-9); a message goes to the band of the largest
        step not above its priority. One stream (or kombu list) per band and queue.
    :param reclaim_interval: seconds between two looks for messages whose lease ran out
        (a worker died holding them); they are reclaimed once idle for ``visibility_timeout``.
    :param dead_letter_max_len: dead letters kept per queue (approximately); older ones go.
    :param result_key_prefix: prefix of result keys, Celery's ``global_keyprefix`` for its
        Redis result backend: the key is ``<prefix>celery-task-meta-<task id>``.
    :param kombu_global_keyprefix: kombu's ``global_keyprefix`` transport option, prepended
        to every key of the kombu layout (queue lists, ``unacked`` ...).
    :param kombu_poll_interval: with the kombu layout, the longest sleep between two looks at
        empty queues (starting at 2 ms and doubling); lists cannot be waited on without
        removing the message, which could lose it if the worker died in between.
    :param socket_timeout: seconds a command may wait for its reply before the connection is
        taken as broken; a blocking read waits at most this long minus one second.
    :param retry_attempts: how often a command is retried after a connection error, with an
        exponential back-off from ``retry_backoff_base`` up to ``retry_backoff_max`` seconds.
    :param master_name: the Sentinel service name of the master, when the URL (a
        ``redis+sentinel://`` or kombu's ``sentinel://``) has no ``?master_name=``.
    :param sentinel_password: the password of the Sentinels themselves (the URL's password is
        the master's).
    :param ssl_cert_reqs: for ``rediss://``: ``required`` (default), ``optional`` or ``none``.
    """

    layout: Literal["streams", "kombu"] = "streams"
    key_prefix: str = "celeriac:"
    group: str = "celeriac"
    priority_steps: tuple[int, ...] = field(default=(0, 3, 6, 9), converter=_steps)
    reclaim_interval: float = 1.0
    dead_letter_max_len: int = 100_000
    result_key_prefix: str = ""
    kombu_global_keyprefix: str = ""
    kombu_poll_interval: float = 0.05
    socket_timeout: float = 10.0
    socket_connect_timeout: float = 5.0
    socket_keepalive: bool = True
    health_check_interval: float = 25.0
    max_connections: int | None = None
    client_name: str | None = None
    retry_attempts: int = 6
    retry_backoff_base: float = 0.1
    retry_backoff_max: float = 5.0
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    master_name: str | None = None
    sentinel_password: str | None = None
