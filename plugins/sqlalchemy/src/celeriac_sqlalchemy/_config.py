"""The ``[sqlalchemy]`` configuration section."""

from __future__ import annotations

from attrs import field
from attrs import frozen
from attrs import validators


@frozen(kw_only=True)
class SqlConfig:
    """``[sqlalchemy]``: tables, connection pool and polling of the SQL result store.

    :param task_table: Celery's ``database_table_names["task"]``.
    :param group_table: Celery's ``database_table_names["group"]``.
    :param schema: the schema of both (Celery's ``database_table_schemas``); None: the default.
    :param pool_size: connections kept open per process.
    :param max_overflow: connections opened beyond ``pool_size`` under load, closed after.
    :param pool_recycle: seconds after which a connection is replaced (before the server's
        idle timeout closes it).
    :param pool_pre_ping: test each connection with a round trip before using it. Off: a
        connection the server closed fails one statement, which is run again at once on a
        new connection, so the ping's round trip per use is saved.
    :param poll_interval: the longest sleep, in seconds, between two reads of a result being waited for.
    :param sweep_interval: least seconds between two deletions of expired rows by one process.
    :param retry_timeout: how long, in seconds, a process that has reached the database
        before keeps trying when it stops answering (a restart): a finishing task waits that
        long for it before its message is given back. A database never reached fails at once.
    """

    task_table: str = "celery_taskmeta"
    group_table: str = "celery_tasksetmeta"
    schema: str | None = None
    pool_size: int = field(default=5, validator=validators.gt(0))
    max_overflow: int = field(default=10, validator=validators.ge(0))
    pool_recycle: int = 3600
    pool_pre_ping: bool = False
    poll_interval: float = field(default=0.1, validator=validators.gt(0))
    sweep_interval: float = field(default=60.0, validator=validators.gt(0))
    retry_timeout: float = field(default=30.0, validator=validators.ge(0))
