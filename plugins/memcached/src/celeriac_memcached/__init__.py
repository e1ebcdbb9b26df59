"""A result store on memcached: ``result_store = "memcached://127.0.0.1:11211"``.

Celery's keys and values (a JSON result under ``celery-task-meta-<task id>``), expiry by
memcached itself, chords counted by compare-and-swap, values over the item size refused
with a clear error (the task fails with it). Built on
:class:`celeriac.plugin.KeyValueResultStore`; pymemcache is imported when the store is built.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from attrs import field
from attrs import frozen
from attrs import validators

from celeriac.plugin import Config
from celeriac.plugin import ConfigSection
from celeriac.plugin import KeyValueResultStore
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_memcached._kv import MemcachedKeyValue

try:
    __version__ = _version("celeriac-memcached")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["MemcachedConfig", "MemcachedKeyValue", "__version__", "memcached_result_store"]

SECTION = "memcached"


@frozen(kw_only=True)
class MemcachedConfig:
    """``[memcached]``: connections and limits.

    :param connect_timeout: seconds to wait for a connection to a server.
    :param timeout: seconds to wait for a server's answer.
    :param max_pool_size: connections kept per server per process (one per concurrent thread).
    :param max_item_size: the largest value stored, in bytes; set it to the servers' ``-I``
        less 512 bytes when they run with a larger item size than memcached's 1 MiB.
    :param key_prefix: put before every key, so that apps can share servers.
    :param retry_timeout: how long, in seconds, a process that has reached the servers before
        keeps trying when they stop answering (a restart): a finishing task waits that long
        before its message is given back. Servers never reached fail at once.
    """

    connect_timeout: float = field(default=2.0, validator=validators.gt(0))
    timeout: float = field(default=5.0, validator=validators.gt(0))
    max_pool_size: int = field(default=32, validator=validators.gt(0))
    max_item_size: int = field(default=1024 * 1024 - 512, validator=validators.gt(0))
    key_prefix: str = ""
    retry_timeout: float = field(default=30.0, validator=validators.ge(0))


def memcached_result_store(url: str, config: Config) -> KeyValueResultStore:
    """The result store for a ``memcached://`` URL."""
    settings = config.section(SECTION, MemcachedConfig)
    kv = MemcachedKeyValue(
        url,
        connect_timeout=settings.connect_timeout,
        timeout=settings.timeout,
        max_pool_size=settings.max_pool_size,
        max_item_size=settings.max_item_size,
        retry_timeout=settings.retry_timeout,
    )
    return KeyValueResultStore(kv, config, key_prefix=settings.key_prefix)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=MemcachedConfig, description="memcached result store settings")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("memcached", "memcache"),
            factory=memcached_result_store,
            description="task results on memcached, under Celery's keys",
        )
    ]
