"""The statements that differ between databases: the upsert that stores a result without
replacing a SUCCESS, and the count of a chord's finished parts.

PostgreSQL and SQLite have ``INSERT ... ON CONFLICT``, MySQL and MariaDB ``INSERT ... ON
DUPLICATE KEY UPDATE``; any other database gets portable statements (an update, then an insert).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from celeriac_sqlalchemy._tables import SUCCESS
from celeriac_sqlalchemy._tables import utcnow

#: The task row's columns a store writes; ``status`` last (see ``upsert_tasks`` on MySQL).
_COLUMNS = ("result", "traceback", "children", "date_done", "status")


def upsert_tasks(tasks: sa.Table, dialect: str) -> sa.Executable | None:
    """Insert a task row, or update it unless it holds a SUCCESS; executed with a list of rows.
    None: this database has no upsert (the caller updates, then inserts)."""
    t = tasks.c
    statement: sa.Executable
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert(tasks) if dialect == "postgresql" else sqlite.insert(tasks)
        statement = insert.on_conflict_do_update(
            index_elements=[t.task_id],
            set_={name: insert.excluded[name] for name in _COLUMNS},
            where=t.status != SUCCESS,
        )
        return statement
    if dialect in ("mysql", "mariadb"):
        mysql_insert = mysql.insert(tasks)
        # Assignments run left to right and see the ones before: status goes last, so every
        # condition reads the row's old status.
        kept = t.status == SUCCESS
        statement = mysql_insert.on_duplicate_key_update(
            [(name, sa.case((kept, t[name]), else_=mysql_insert.inserted[name])) for name in _COLUMNS]
        )
        return statement
    return None


def _insert_ignore(table: sa.Table, dialect: str, **values: Any) -> sa.Executable:
    """Insert a row unless its primary key exists (elsewhere a duplicate raises IntegrityError)."""
    statement: sa.Executable
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        statement = sa.insert(table).values(**values).prefix_with("IGNORE")
    else:
        statement = sa.insert(table).values(**values)
    return statement


def count_part(conn: sa.Connection, chords: sa.Table, parts: sa.Table, group_id: str, task_id: str) -> int:
    """In the caller's transaction: record ``task_id`` as a finished part of ``group_id`` and
    return the chord's count after it, or 0 when the part was recorded already.

    The increment of the chord's row takes that row's lock until commit, so concurrent
    counts of one chord take turns and each sees a different count.
    """
    now = utcnow()
    c = chords.c
    dialect = conn.dialect.name
    try:
        added = conn.execute(_insert_ignore(parts, dialect, group_id=group_id, task_id=task_id, done_at=now))
    except sa.exc.IntegrityError:  # a database without an insert-or-ignore: counted already
        return 0
    if not added.rowcount:
        return 0
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        upsert = (
            insert(chords)
            .values(group_id=group_id, done=1, updated_at=now)
            .on_conflict_do_update(index_elements=[c.group_id], set_={"done": c.done + 1, "updated_at": now})
            .returning(c.done)
        )
        done: int = conn.execute(upsert).scalar_one()
        return done
    if dialect in ("mysql", "mariadb"):
        bump = (
            mysql.insert(chords)
            .values(group_id=group_id, done=1, updated_at=now)
            .on_duplicate_key_update(done=c.done + 1, updated_at=now)
        )
        conn.execute(bump)
    elif not conn.execute(
        sa.update(chords).where(c.group_id == group_id).values(done=c.done + 1, updated_at=now)
    ).rowcount:
        conn.execute(sa.insert(chords).values(group_id=group_id, done=1, updated_at=now))
    # Our increment holds the row's lock until commit: this locking read sees it.
    counted: int = conn.execute(
        sa.select(c.done).where(c.group_id == group_id).with_for_update()
    ).scalar_one()
    return counted
