"""A page of the task list as SQL: filters, ``field:value`` and free-word search, order, window.

Every value reaches SQLite as a parameter; only names checked against the fixed sets
below (sort keys, search fields) are written into the statement.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

#: Sort keys Flower accepts (``sort_by``, ``-`` for descending).
SORT_KEYS = frozenset({"name", "state", "received", "started"})
#: Fields a ``field:value`` search term may name; free words match any of these and the id.
SEARCH_FIELDS = frozenset({"name", "state", "worker", "args", "kwargs", "result", "uuid"})


@frozen(kw_only=True)
class TaskQuery:
    """A page of the task list: filters (None: any), a search string, an order, a window."""

    state: str | None = None
    name: str | None = None
    worker: str | None = None
    received_start: float | None = None
    received_end: float | None = None
    search: str = ""
    sort_by: str | None = None
    offset: int = 0
    limit: int | None = None


@frozen(kw_only=True)
class TaskPage:
    """Tasks of one page (their stored fields) and how many matched in all."""

    tasks: list[dict[str, Any]]
    total: int


@frozen(kw_only=True)
class TaskSelect:
    """The statements of one query over ``tasks``: its page of ``data`` and its total count."""

    rows: str
    count: str
    params: list[Any]


def select(query: TaskQuery) -> TaskSelect:
    """The SQL of ``query``.

    :raises ValueError: for an unknown sort key or search field, naming it.
    """
    where, params = _where(query)
    order = "seq DESC"
    if query.sort_by:
        key = query.sort_by.lstrip("-")
        if key not in SORT_KEYS:
            raise ValueError(
                f"Invalid sort_by '{query.sort_by}', expected one of {', '.join(sorted(SORT_KEYS))}"
            )
        order = f"{key} {'DESC' if query.sort_by.startswith('-') else 'ASC'}, seq DESC"
    window = ""
    if query.limit is not None:
        window = f" LIMIT {int(query.limit)} OFFSET {max(0, int(query.offset))}"
    elif query.offset:
        window = f" LIMIT -1 OFFSET {max(0, int(query.offset))}"
    return TaskSelect(
        rows=f"SELECT data FROM tasks{where} ORDER BY {order}{window}",
        count=f"SELECT COUNT(*) FROM tasks{where}",
        params=params,
    )


def _where(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("state", query.state), ("name", query.name), ("worker", query.worker)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.received_start is not None:
        clauses.append("received >= ?")
        params.append(query.received_start)
    if query.received_end is not None:
        clauses.append("received <= ?")
        params.append(query.received_end)
    for term in query.search.split():
        field, sep, value = term.partition(":")
        if sep and field in SEARCH_FIELDS and value:
            if field in ("state", "uuid"):
                clauses.append(f"{field} = ?")
                params.append(value.upper() if field == "state" else value)
            else:
                clauses.append(f"{field} LIKE ? ESCAPE '\\'")
                params.append(f"%{_like(value)}%")
        elif sep and field and value and field.isidentifier():
            raise ValueError(f"unknown search field {field!r}; use one of {', '.join(sorted(SEARCH_FIELDS))}")
        else:
            pattern = f"%{_like(term)}%"
            clauses.append(
                "(uuid LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\' "
                "OR kwargs LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\')"
            )
            params.extend([pattern] * 5)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
