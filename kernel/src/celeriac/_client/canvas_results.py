"""What a primitive's results are: the task whose result is the workflow's, and the result
handle ``apply_async`` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.canvas import Canvas
from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature
from celeriac._client.result import AsyncResult
from celeriac._client.result import GroupResult

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


def final_task(node: Canvas) -> Signature:
    """The task whose result is the workflow's: the last step's, the body's."""
    if isinstance(node, Signature):
        return node
    if isinstance(node, Chain):
        return final_task(node.tasks[-1])
    if isinstance(node, Chord):
        return final_task(node.body)
    raise TypeError("a group has no single final task")


def result_of(node: Canvas, app: Celeriac, parent: AsyncResult | GroupResult | None = None) -> Any:
    """The result handle of a frozen primitive: what ``apply_async`` returns."""
    if isinstance(node, Signature):
        return AsyncResult(node.id, app, parent=parent)
    if isinstance(node, Chain):
        result = parent
        for step in node.tasks:
            result = result_of(step, app, result)
        return result
    if isinstance(node, Group):
        return GroupResult(node.id, [result_of(task, app) for task in node.tasks], app, parent=parent)
    return result_of(node.body, app, result_of(node.header, app, parent))
