"""Workflows in eager mode: chains, groups and chords run in the calling thread.

With ``task_always_eager`` (or ``primitive.apply()``) nothing is sent: each task runs here
as :func:`~celeriac._client.eager.apply_eagerly` runs one, in the order a worker would run them, and
the results come back already finished. As in a worker: a chain gives each step the previous
result (unless immutable), a chord's body gets the header's results in order, callbacks
(``link``) get the result and errbacks (``link_error``) the failed task's id. With
``task_eager_propagates`` (the default) the first exception reaches the caller; without it
a failed step stops its chain, and a chord whose header failed records a ``ChordError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.canvas import Canvas
from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature
from celeriac._client.canvas_results import final_task
from celeriac._client.canvas_wire import linked
from celeriac._client.eager import EagerResult
from celeriac._client.eager import apply_eagerly
from celeriac._model import states
from celeriac._model.errors import ChordError
from celeriac._model.errors import NotRegisteredError

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


class EagerGroupResult:
    """The finished results of a group run eagerly; the reading API of GroupResult."""

    def __init__(self, group_id: str, results: Sequence[EagerResult | EagerGroupResult]) -> None:
        self.id = group_id
        self.results = list(results)

    def __repr__(self) -> str:
        return f"<EagerGroupResult {self.id} of {len(self.results)}>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[EagerResult | EagerGroupResult]:
        return iter(self.results)

    @property
    def children(self) -> list[EagerResult | EagerGroupResult]:
        return self.results

    def completed_count(self) -> int:
        return sum(1 for result in self.results if result.successful())

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return all(result.successful() for result in self.results)

    def failed(self) -> bool:
        return any(result.failed() for result in self.results)

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        return [result.get(timeout, propagate) for result in self.results]

    def join(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        return self.get(timeout, propagate)

    def forget(self) -> None:
        """Nothing is stored for an eager result."""


def apply_canvas(app: Celeriac, node: Canvas) -> EagerResult | EagerGroupResult:
    """Run ``node`` (its partial arguments applied already) here and now."""
    if isinstance(node, Signature):
        return _signature(app, node, ())
    if isinstance(node, Chain):
        return _chain(app, node)
    if isinstance(node, Group):
        return _group(app, node)
    return _chord(app, node)


def _signature(app: Celeriac, sig: Signature, previous: tuple[Any, ...]) -> EagerResult:
    """One task, given ``previous`` (a chain's last result) before its own arguments."""
    task = app.tasks.get(sig.task)
    if task is None:
        raise NotRegisteredError(
            f"eager mode runs workflows in this process, and task {sig.task!r} is not registered "
            "in this app (is its module imported?)"
        )
    args = sig.args if sig.immutable else (*previous, *sig.args)
    try:
        result = apply_eagerly(task, args, dict(sig.kwargs), task_id=sig.options.get("task_id"))
    except Exception:
        _errbacks(app, sig, None)
        raise
    if result.successful():
        for callback in _linked(app, sig, "link"):
            _with_previous(app, callback, (result.result,))
    else:
        _errbacks(app, sig, result.id)
    return result


def _errbacks(app: Celeriac, sig: Signature, task_id: str | None) -> None:
    """Celery's classic errback call: the failed task's id first."""
    failed = task_id or str(sig.options.get("task_id") or "")
    for errback in _linked(app, sig, "link_error"):
        _with_previous(app, errback, (failed,))


def _with_previous(app: Celeriac, node: Canvas, previous: tuple[Any, ...]) -> EagerResult | EagerGroupResult:
    """Run ``node`` with ``previous`` before its arguments (a signature's own rule: not when
    immutable; a group's members each; a chord's header)."""
    if isinstance(node, Signature):
        return _signature(app, node, previous)
    return apply_canvas(app, node.clone(previous))


def _chain(app: Celeriac, node: Chain) -> EagerResult | EagerGroupResult:
    result: EagerResult | EagerGroupResult | None = None
    previous: tuple[Any, ...] = ()
    for step in node.tasks:
        result = _with_previous(app, step, previous)
        if not result.successful():
            return result  # the rest of the chain does not run, as in a worker
        previous = (result.get(),)
    assert result is not None
    return result


def _group(app: Celeriac, node: Group) -> EagerGroupResult:
    group_id = str(node.options.get("group_id") or uuid.uuid4())
    return EagerGroupResult(group_id, [apply_canvas(app, member) for member in node.tasks])


def _chord(app: Celeriac, node: Chord) -> EagerResult | EagerGroupResult:
    header = _group(app, node.header)
    failed = next((member for member in header.results if not member.successful()), None)
    if failed is not None:  # only without task_eager_propagates: else the failure was raised
        last = final_task(node.body)
        body_id = str(last.options.get("task_id") or uuid.uuid4())
        _errbacks(app, last, body_id)
        error = ChordError(f"dependency {failed.id} raised {_failure(failed)!r}")
        return EagerResult(body_id, states.FAILURE, error, None)
    return _with_previous(app, node.body, (header.get(),))


def _failure(result: EagerResult | EagerGroupResult) -> Any:
    if isinstance(result, EagerResult):
        return result.result
    return next((_failure(member) for member in result.results if not member.successful()), None)


def _linked(app: Celeriac, sig: Signature, key: str) -> list[Canvas]:
    """Callbacks or errbacks, frozen so that an errback of a callback is given its id."""
    return [node.freeze() for node in linked(sig, key, app)]
