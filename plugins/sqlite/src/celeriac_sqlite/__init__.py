"""A durable broker, result store and beat schedule store in one local SQLite file.

Workers and producers on one machine share the file (WAL mode); no server is needed.
URLs follow SQLAlchemy: ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``.
Importing this module opens nothing: each component connects on first use.
"""

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import ScheduleStoreSpec
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac_sqlite._config import SqliteConfig
from celeriac_sqlite._db import SCHEME
from celeriac_sqlite._results import SqliteResultStore
from celeriac_sqlite._schedule import SqliteScheduleStore
from celeriac_sqlite._transport import SqliteTransport

try:
    __version__ = _version("celeriac-sqlite")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "SqliteConfig",
    "SqliteResultStore",
    "SqliteScheduleStore",
    "SqliteTransport",
    "__version__",
]


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="sqlite", cls=SqliteConfig, description="SQLite broker and store settings")]


@hookimpl
def celeriac_add_transports() -> Sequence[TransportSpec]:
    return [
        TransportSpec(
            schemes=(SCHEME,),
            factory=SqliteTransport,
            description="durable queues in a local SQLite file, shared by processes on one machine",
        )
    ]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=(SCHEME,),
            factory=SqliteResultStore,
            description="task results in a local SQLite file (may be the broker's)",
        )
    ]


@hookimpl
def celeriac_add_schedule_stores() -> Sequence[ScheduleStoreSpec]:
    return [
        ScheduleStoreSpec(
            schemes=(SCHEME,),
            factory=SqliteScheduleStore,
            description="beat's last-run times in a local SQLite file",
        )
    ]
