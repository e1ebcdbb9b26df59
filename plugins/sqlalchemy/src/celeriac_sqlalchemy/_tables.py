"""Celery's result tables (``celery_taskmeta``, ``celery_tasksetmeta``), celeriac's chord
tables, and the mapping between a :class:`~celeriac.plugin.ResultRecord` and a row.

The task table is the one Celery's database backend (``celery.backends.database.models.Task``)
creates, column for column, so either creates it and both read and write it. Celery keeps the
fields of a result in columns: ``status``, ``result`` (the return value alone, encoded by the
result serializer), ``traceback``, ``children`` (encoded), ``date_done`` (set for finished
states only). A JSON record is split into those columns and put together again when read.
A record of another content type cannot be split without its serializer: its whole payload
goes into ``result`` after a header naming content type and state (celeriac reads it back;
Celery cannot).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from celeriac.plugin import ResultRecord
from celeriac.plugin import decode_value
from celeriac.plugin import encode_value

JSON = "application/json"
SUCCESS = "SUCCESS"
MAGIC = b"\x01celeriac-result\n"

#: Celery's integer type for ``id``: BigInteger on SQL Server, as Celery declares it.
_ID = sa.Integer().with_variant(sa.BigInteger, "mssql")


def make_tables(
    task_table: str, group_table: str, schema: str | None
) -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table, sa.Table]:
    """The tables, named as configured (Celery's ``database_table_names``/``_schemas``)."""
    metadata = sa.MetaData(schema=schema)
    tasks = sa.Table(
        task_table,
        metadata,
        sa.Column(
            "id", _ID, sa.Sequence("task_id_sequence", schema=schema), primary_key=True, autoincrement=True
        ),
        sa.Column("task_id", sa.String(155), unique=True),
        sa.Column("status", sa.String(50)),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("date_done", sa.DateTime, nullable=True, index=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("children", sa.LargeBinary, nullable=True),
        sqlite_autoincrement=True,
    )
    groups = sa.Table(
        group_table,
        metadata,
        sa.Column(
            "id", _ID, sa.Sequence("taskset_id_sequence", schema=schema), primary_key=True, autoincrement=True
        ),
        sa.Column("taskset_id", sa.String(155), unique=True),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("date_done", sa.DateTime, nullable=True, index=True),
        sqlite_autoincrement=True,
    )
    # celeriac's own: a chord's finished header tasks (one row each, so a redelivered part
    # counts once) and its count (one row, whose lock makes concurrent counts take turns).
    chords = sa.Table(
        "celeriac_chords",
        metadata,
        sa.Column("group_id", sa.String(155), primary_key=True),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
    )
    parts = sa.Table(
        "celeriac_chord_parts",
        metadata,
        sa.Column("group_id", sa.String(155), primary_key=True),
        sa.Column("task_id", sa.String(155), primary_key=True),
        sa.Column("done_at", sa.DateTime, nullable=False, index=True),
    )
    return metadata, tasks, groups, chords, parts


def utcnow() -> dt.datetime:
    """Now, as the naive UTC time Celery's ``DateTime`` columns hold."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _naive_utc(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def row_values(record: ResultRecord) -> dict[str, Any]:
    """The columns of a task row for ``record``."""
    if record.content_type != JSON:
        return {
            "status": record.state,
            "result": encode_value(record),
            "traceback": None,
            "children": None,
            "date_done": utcnow(),
        }
    meta = json.loads(record.payload)
    children = meta.get("children")
    return {
        "status": record.state,
        "result": json.dumps(meta.get("result")).encode(),
        "traceback": meta.get("traceback"),
        "children": json.dumps(children).encode() if children else None,
        "date_done": _naive_utc(meta.get("date_done")),
    }


def record_of(row: Any) -> ResultRecord:
    """A record from a task row (``task_id, status, result, traceback, children, date_done``),
    written by celeriac or by Celery with the JSON serializer."""
    task_id, status, result, traceback, children, date_done = row
    result = bytes(result) if result is not None else None
    if result is not None and result.startswith(MAGIC):
        return decode_value(task_id, result)
    meta = {
        "status": status,
        "result": _json(result),
        "traceback": traceback,
        "children": _json(bytes(children)) if children is not None else [],
        "date_done": date_done.replace(tzinfo=dt.UTC).isoformat() if date_done is not None else None,
        "task_id": task_id,
    }
    return ResultRecord(task_id=task_id, state=status, payload=json.dumps(meta).encode(), content_type=JSON)


def group_record(group_id: str, value: Any) -> ResultRecord | None:
    """A group Celery saved (``[[id, parent], [[[member, parent], None], ...]]``) as the record
    celeriac saves for one: SUCCESS with the member ids."""
    try:
        (_, _), members = json.loads(bytes(value))
        ids = [member[0][0] for member in members]
    except (TypeError, ValueError, IndexError):
        return None
    meta = {
        "status": SUCCESS,
        "result": ids,
        "traceback": None,
        "children": [],
        "date_done": None,
        "task_id": group_id,
    }
    return ResultRecord(task_id=group_id, state=SUCCESS, payload=json.dumps(meta).encode(), content_type=JSON)


def _json(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        # Written with another serializer (Celery with pickle): not readable as JSON here.
        return {
            "exc_type": "UnreadableResult",
            "exc_message": f"a {len(value)}-byte result not in JSON",
            "exc_module": "builtins",
        }
