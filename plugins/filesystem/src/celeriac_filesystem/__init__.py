"""A result store in a directory: ``result_store = "file:///var/lib/app/results"``.

A file per result, named and filled as Celery's filesystem backend does, written atomically
(write then rename); chords counted under a file lock, safe across the processes of one
host; expired files swept. Built on :class:`celeriac.plugin.KeyValueResultStore`.
Importing this module touches no file: the directory is created on first use.
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
from celeriac_filesystem._kv import FilesystemKeyValue
from celeriac_filesystem._kv import directory_of

try:
    __version__ = _version("celeriac-filesystem")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["FilesystemConfig", "FilesystemKeyValue", "__version__", "filesystem_result_store"]

SECTION = "filesystem"


@frozen(kw_only=True)
class FilesystemConfig:
    """``[filesystem]``: how results are written.

    :param fsync: sync every file (and the directory) to disk before it counts as written,
        so results survive a power loss, at a large cost per result; off, a crash of the
        process loses nothing either (rename is atomic), a crash of the machine may.
    :param sweep_interval: least seconds between two sweeps of expired files by one process.
    """

    fsync: bool = False
    sweep_interval: float = field(default=60.0, validator=validators.gt(0))


def filesystem_result_store(url: str, config: Config) -> KeyValueResultStore:
    """The result store for a ``file://`` URL."""
    settings = config.section(SECTION, FilesystemConfig)
    expires = config.result_expires if config.result_expires > 0 else None
    kv = FilesystemKeyValue(url, directory_of(url), expires=expires, fsync=settings.fsync)
    return KeyValueResultStore(kv, config, sweep_interval=settings.sweep_interval)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name=SECTION, cls=FilesystemConfig, description="filesystem result store settings")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=("file",),
            factory=filesystem_result_store,
            description="task results as files in a directory, laid out as Celery's filesystem backend",
        )
    ]
