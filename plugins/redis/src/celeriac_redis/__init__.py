"""Redis for celeriac: a transport, a result store and a schedule store.

``broker = "redis://host:6379/0"`` (or ``rediss://`` for TLS, ``redis+sentinel://`` for a
master watched by Sentinels, ``redis+cluster://`` for Redis Cluster). The default layout keeps each
queue in Redis Streams read through a consumer group; ``[redis] layout = "kombu"`` uses the
lists of kombu's Redis transport instead, so Celery and celeriac share queues.
Importing this module imports neither redis nor anything that connects: each component
imports redis-py and connects on first use.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import ScheduleStoreSpec
from celeriac.plugin import Transport
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac_redis._config import RedisConfig
from celeriac_redis._results import RedisResultStore
from celeriac_redis._schedule import RedisScheduleStore
from celeriac_redis._streams import RedisTransport
from celeriac_redis._urls import SCHEMES

try:
    __version__ = _version("celeriac-redis")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "RedisConfig",
    "RedisResultStore",
    "RedisScheduleStore",
    "RedisTransport",
    "__version__",
]


def make_transport(url: str, config: Config) -> Transport:
    """The transport of the configured ``[redis] layout``."""
    settings = config.section("redis", RedisConfig)
    if settings.layout == "kombu":
        from celeriac_redis._kombu import KombuRedisTransport

        kombu: Transport = KombuRedisTransport(url, config)
        return kombu
    return RedisTransport(url, config)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="redis", cls=RedisConfig, description="Redis broker and store settings")]


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=SCHEMES,
            factory=make_transport,
            description="Redis: streams with consumer groups (or kombu's lists, layout = 'kombu')",
        )
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=SCHEMES,
            factory=RedisResultStore,
            description="results under Celery's celery-task-meta-<id> keys; get() woken by pub/sub",
        )
    ]


@hookimpl
def celeriac_add_schedule_stores() -> Sequence[ScheduleStoreSpec]:
    return [
        ScheduleStoreSpec(
            schemes=SCHEMES,
            factory=RedisScheduleStore,
            description="beat's last-run times in a Redis hash",
        )
    ]
