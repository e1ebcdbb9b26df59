"""The celeriac project's own plugin distributions, by the URL schemes and pool names they serve.

Only for error messages: when no installed plugin serves ``redsi://``, the error names the
nearest known scheme and the distribution to install, instead of a guessed
``celeriac-redsi``. Nothing is loaded or chosen from here; plugins are still found through
their entry points. ``tests/test_catalogue.py`` checks these tables against the plugins
installed in the workspace, so a new scheme or pool in this repository must be added here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

_REDIS = ("redis", "rediss", "redis+socket", "redis+sentinel", "rediss+sentinel", "sentinel")
_REDIS_ALL = (*_REDIS, "redis+cluster", "rediss+cluster")
_SQL = tuple(
    f"db+{dialect}{driver}"
    for dialect, drivers in (
        ("postgresql", ("", "+psycopg", "+psycopg2", "+pg8000")),
        ("mysql", ("", "+pymysql", "+mysqldb", "+mysqlconnector", "+mariadbconnector")),
        ("mariadb", ("", "+pymysql", "+mysqldb", "+mysqlconnector", "+mariadbconnector")),
        ("sqlite", ("", "+pysqlite")),
        ("oracle", ("", "+oracledb", "+cx_oracle")),
        ("mssql", ("", "+pyodbc", "+pymssql")),
    )
    for driver in drivers
)

#: kind (as the errors name it) -> scheme or pool name -> the distribution that provides it.
KNOWN: Mapping[str, Mapping[str, str]] = {
    "transport": {
        "sqlite": "celeriac-sqlite",
        **dict.fromkeys(_REDIS_ALL, "celeriac-redis"),
        "amqp": "celeriac-amqp",
        "amqps": "celeriac-amqp",
        "sqs": "celeriac-sqs",
    },
    "result store": {
        "sqlite": "celeriac-sqlite",
        **dict.fromkeys(_REDIS_ALL, "celeriac-redis"),
        "rpc": "celeriac-amqp",
        **dict.fromkeys(_SQL, "celeriac-sqlalchemy"),
        "memcached": "celeriac-memcached",
        "memcache": "celeriac-memcached",
        "file": "celeriac-filesystem",
        "s3": "celeriac-s3",
        "dynamodb": "celeriac-dynamodb",
        "azureblob": "celeriac-azureblob",
        "gs": "celeriac-gcs",
        "gcs": "celeriac-gcs",
        "couchdb": "celeriac-couchdb",
        "couchdbs": "celeriac-couchdb",
    },
    "schedule store": {
        "sqlite": "celeriac-sqlite",
        **dict.fromkeys(_REDIS_ALL, "celeriac-redis"),
    },
    "pool": {
        name: f"celeriac-{name}" for name in ("threads", "solo", "prefork", "asyncio", "gevent", "eventlet")
    },
}


def install_hint(kind: str, name: str, installed: Mapping[str, str]) -> str:
    """What to do when no installed plugin provides the ``kind`` called ``name``.

    :param installed: the schemes or names the installed plugins provide for ``kind``, each
        with the name of its plugin.
    :returns: a sentence for the end of the error message.
    """
    known = KNOWN.get(kind, {})
    if name in known:
        return f"Install {known[name]}, which provides it."
    candidates = sorted({*known, *installed})
    nearest = difflib.get_close_matches(name, candidates, n=1)
    if nearest:
        (match,) = nearest
        shown = f"{match}://" if kind != "pool" else match
        if match in installed:
            return f"Did you mean {shown!r}? The installed plugin {installed[match]!r} provides it."
        return f"Did you mean {shown!r}? Install {known[match]}, which provides it."
    distributions = sorted(set(known.values()))
    if not distributions:
        return "No plugin of the celeriac project provides it."
    return (
        f"No plugin of the celeriac project provides it; those providing a {kind} are "
        f"{', '.join(distributions)}."
    )
