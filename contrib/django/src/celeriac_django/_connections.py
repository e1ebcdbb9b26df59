"""Django's database connections in a worker: fresh around each task, never shared across a fork.

- Around each task (Celery's ``DjangoWorkerFixup``): ``close_old_connections()`` closes a
  connection past ``CONN_MAX_AGE`` or left broken by the previous task, and ends a transaction a
  task left open, so one task's failure is not the next one's.
- After a fork (a prefork child): the connections copied from the parent belong to the parent. A
  child must neither use them nor close them (closing a PostgreSQL connection sends the server a
  goodbye over the socket the parent still uses): each is set aside, unused and never closed, and
  Django opens a new one on first use.
"""

from __future__ import annotations

import sys


def django_ready() -> bool:
    """Is this a process in which Django is set up? (A plain celeriac process never imports it.)"""
    registry = sys.modules.get("django.apps")
    return registry is not None and bool(registry.apps.ready)


def close_old_connections() -> None:
    if django_ready():
        from django.db import close_old_connections as close

        close()


def drop_inherited(_owner: object) -> None:
    """In a forked child: set the parent's connections aside so Django opens new ones.

    Each is kept referenced by its Django wrapper (never garbage-collected, so never closed)."""
    if not django_ready():
        return
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is None:
            continue
        wrapper.__dict__.setdefault("celeriac_parents_connections", []).append(wrapper.connection)
        wrapper.connection = None
        wrapper.in_atomic_block = False
        wrapper.savepoint_ids = []
        wrapper.atomic_blocks = []
        wrapper.needs_rollback = False
        wrapper.closed_in_transaction = False
        wrapper.run_on_commit = []
