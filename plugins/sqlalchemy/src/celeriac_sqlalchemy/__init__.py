"""A result store on SQL databases through SQLAlchemy 2, in Celery's tables.

URLs are Celery's: ``db+postgresql://``, ``db+postgresql+psycopg://``, ``db+mysql://``,
``db+mysql+pymysql://``, ``db+sqlite:///file.db``. Results go to ``celery_taskmeta`` laid out as
Celery's database backend lays it out, so a Celery app on the same database reads them and
the reverse. SQLAlchemy is imported when the first store is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from celeriac.plugin import ConfigSection
from celeriac.plugin import ResultStoreSpec
from celeriac.plugin import hookimpl
from celeriac_sqlalchemy._config import SqlConfig

if TYPE_CHECKING:
    from celeriac.plugin import Config
    from celeriac_sqlalchemy._store import SqlResultStore

try:
    __version__ = _version("celeriac-sqlalchemy")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["SqlConfig", "__version__", "sql_result_store"]

#: SQLAlchemy's synchronous dialects and drivers, as ``db+<dialect>[+<driver>]`` (Celery's form).
_DRIVERS = {
    "postgresql": ("psycopg", "psycopg2", "pg8000"),
    "mysql": ("pymysql", "mysqldb", "mysqlconnector", "mariadbconnector"),
    "mariadb": ("pymysql", "mysqldb", "mysqlconnector", "mariadbconnector"),
    "sqlite": ("pysqlite",),
    "oracle": ("oracledb", "cx_oracle"),
    "mssql": ("pyodbc", "pymssql"),
}
SCHEMES = tuple(
    scheme
    for dialect, drivers in _DRIVERS.items()
    for scheme in (f"db+{dialect}", *(f"db+{dialect}+{driver}" for driver in drivers))
)


def sql_result_store(url: str, config: Config) -> SqlResultStore:
    """The result store for a ``db+...`` URL (imports SQLAlchemy)."""
    from celeriac_sqlalchemy._store import SqlResultStore

    return SqlResultStore(url, config)


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="sqlalchemy", cls=SqlConfig, description="SQL result store settings")]


@hookimpl
def celeriac_add_result_stores() -> Sequence[ResultStoreSpec]:
    return [
        ResultStoreSpec(
            schemes=SCHEMES,
            factory=sql_result_store,
            description="task results in Celery's SQL tables (PostgreSQL, MySQL/MariaDB, SQLite ...)",
        )
    ]
