"""Django's connections in a worker: closed around each task, and never shared with a forked child."""

from __future__ import annotations

import os

from django.db import connections
from djtestapp.tasks import fresh_connection

from celeriac import Celeriac
from celeriac.testing import worker_thread
from celeriac_django.task import DjangoTask


def test_each_task_starts_without_the_last_ones_connection() -> None:
    app = Celeriac(
        "conns",
        broker="memory://",
        result_store="memory://",
        config=False,
        env={},
        task_cls=DjangoTask,
        set_as_current=False,
    )
    with worker_thread(app, pool="threads", concurrency=1):
        # One thread runs both: without close_old_connections the second finds the first's.
        assert [app.send_task(fresh_connection.name).get(timeout=10) for _ in range(2)] == [True, True]


def test_forked_child_leaves_the_parents_postgresql_connection_alone(pg_alias: str) -> None:
    app = Celeriac(
        "fork", broker="memory://", config=False, env={}, set_as_current=False
    )  # registers the reset
    with connections[pg_alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (parent_backend,) = cursor.fetchone()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, then closing everything as a child exiting does
        code = 1
        try:
            with connections[pg_alias].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (child_backend,) = cursor.fetchone()
            connections.close_all()
            code = 0 if child_backend != parent_backend else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child used the parent's connection"
    # The child closed its connections: the parent's, which it must not have touched, still works.
    with connections[pg_alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone() == (parent_backend,)
    del app
