"""Building primitives: a signature by name, and Celery's map, starmap and chunks (one task
applying a signature to many items, in the worker)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import frozen

from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


def signature(
    task: str | Mapping[str, Any],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    app: Celeriac | None = None,
    immutable: bool = False,
    **options: Any,
) -> Signature:
    """A signature by task name (or from Celery's dict of a plain signature)."""
    if isinstance(task, Mapping):
        return Signature.from_dict(task, app)
    return Signature(
        task=task, args=tuple(args), kwargs=dict(kwargs or {}), options=options, immutable=immutable, app=app
    )


@frozen(kw_only=True)
class Chunks(Group):
    """The group :func:`chunks` builds; sent as it is, or made a plain group (Celery's
    ``chunks(...).group()``) to use inside a chord or chain."""

    def group(self) -> Group:
        return Group(tasks=self.tasks, options=self.options)


def chunks(sig: Signature, items: Iterable[Any], size: int) -> Chunks:
    """Split ``items`` into tasks of ``size`` argument tuples each, run with ``starmap``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    iterator = iter(items)
    parts: list[Signature | Chain | Chord] = []
    while batch := list(itertools.islice(iterator, size)):
        parts.append(starmap(sig, batch))
    return Chunks(tasks=tuple(parts))


def xmap(sig: Signature, items: Iterable[Any]) -> Signature:
    """One task applying ``sig`` to each item in the worker: Celery's ``map``."""
    return Signature(task="celery.map", kwargs={"task": sig.to_dict(), "it": list(items)}, app=sig.app)


def starmap(sig: Signature, items: Iterable[Iterable[Any]]) -> Signature:
    """One task applying ``sig`` to each argument tuple in the worker: Celery's ``starmap``."""
    return Signature(
        task="celery.starmap", kwargs={"task": sig.to_dict(), "it": [list(i) for i in items]}, app=sig.app
    )


#: Celery's name for :func:`starmap` (``celery.xstarmap``), beside :func:`xmap`.
xstarmap = starmap
