"""A workflow drawn as a graph: the tasks sharing a root, linked parent to child, as SVG.

Chains show as a line (each step's parent is the step before), groups as a fan (members
share a parent), a chord's body hangs off its header's tasks. Columns are depth from the
root; a task whose parent is not kept starts a column of its own at depth 0.
"""

from __future__ import annotations

from html import escape
from typing import Any

_W, _H, _GAP_X, _GAP_Y = 190, 44, 50, 14
_COLORS = {
    "SUCCESS": "#2e7d32",
    "FAILURE": "#c62828",
    "RETRY": "#ef6c00",
    "REVOKED": "#6a1b9a",
    "STARTED": "#0277bd",
    "RECEIVED": "#546e7a",
}


def layout(tasks: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Column (depth) and row of every task."""
    ids = {task["uuid"] for task in tasks}
    parent = {t["uuid"]: t.get("parent_id") for t in tasks if t.get("parent_id") in ids}
    depth: dict[str, int] = {}

    def depth_of(uuid: str, seen: frozenset[str] = frozenset()) -> int:
        if uuid not in depth:
            up = parent.get(uuid)
            depth[uuid] = 0 if up is None or up in seen else depth_of(up, seen | {uuid}) + 1
        return depth[uuid]

    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for task in tasks:
        column = depth_of(task["uuid"])
        place[task["uuid"]] = (column, rows.get(column, 0))
        rows[column] = rows.get(column, 0) + 1
    return place


def svg(tasks: list[dict[str, Any]], current: str, prefix: str) -> str:
    """The graph as an inline SVG element; ``current`` is outlined."""
    place = layout(tasks)
    if not place:
        return ""
    width = (max(c for c, _ in place.values()) + 1) * (_W + _GAP_X)
    height = (max(r for _, r in place.values()) + 1) * (_H + _GAP_Y)
    parts = [f'<svg class="workflow" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for task in tasks:
        up = task.get("parent_id")
        if up in place:
            (c1, r1), (c2, r2) = place[up], place[task["uuid"]]
            x1, y1 = c1 * (_W + _GAP_X) + _W, r1 * (_H + _GAP_Y) + _H // 2
            x2, y2 = c2 * (_W + _GAP_X), r2 * (_H + _GAP_Y) + _H // 2
            parts.append(f'<path class="edge" d="M{x1},{y1} C{x1 + 25},{y1} {x2 - 25},{y2} {x2},{y2}"/>')
    for task in tasks:
        column, row = place[task["uuid"]]
        x, y = column * (_W + _GAP_X), row * (_H + _GAP_Y)
        state = task.get("state") or "PENDING"
        color = _COLORS.get(state, "#9e9e9e")
        outline = ' stroke="#000" stroke-width="3"' if task["uuid"] == current else ""
        name = escape((task.get("name") or "?")[-28:])
        parts.append(
            f'<a href="{escape(prefix)}/task/{escape(task["uuid"])}" data-task="{escape(task["uuid"])}">'
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{color}"{outline}/>'
            f'<text x="{x + 8}" y="{y + 18}">{name}</text>'
            f'<text x="{x + 8}" y="{y + 35}" class="small">'
            f"{escape(state)} {escape(task['uuid'][:8])}</text></a>"
        )
    parts.append("</svg>")
    return "".join(parts)
