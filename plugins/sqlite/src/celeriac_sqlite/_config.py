"""The ``[sqlite]`` configuration section."""

from __future__ import annotations

from typing import Literal

from attrs import frozen


@frozen(kw_only=True)
class SqliteConfig:
    """``[sqlite]``: how the SQLite transport and stores use their database file.

    :param busy_timeout: seconds a statement waits for another connection's write lock
        before failing with "database is locked". Writers take turns, so this only needs
        to exceed the longest write transaction, under load included.
    :param poll_interval: the longest sleep, in seconds, between two looks at an empty queue.
        Sleeps start at 2 ms and double up to this value, so a message published just after
        a miss is seen within milliseconds while an idle worker costs one cheap read per interval.
    :param synchronous: SQLite's ``PRAGMA synchronous`` in WAL mode. ``NORMAL`` survives a
        crash of any process, but a power loss or OS crash may roll back the last commits
        (the database stays consistent). ``FULL`` syncs the disk at every commit, so
        published messages and acks survive power loss too, at a cost in write throughput.
    """

    busy_timeout: float = 30.0
    poll_interval: float = 0.05
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
