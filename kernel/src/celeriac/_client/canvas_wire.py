"""Reading primitives from Celery's dict form (``subtask_type``, ``options`` ...), as
messages, results and Celery clients carry them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve

from celeriac._client.canvas import Canvas
from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature
from celeriac._client.canvas import as_list
from celeriac._client.canvas import chain
from celeriac._client.canvas import group
from celeriac._client.canvas import member

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac


def from_dict(data: Mapping[str, Any], app: Celeriac | None = None) -> Canvas:
    """Any primitive from Celery's dict, by its ``subtask_type``."""
    kind = data.get("subtask_type")
    options = dict(data.get("options") or {})
    if data.get("chord_size") and "chord_size" not in options:
        options["chord_size"] = data["chord_size"]  # where Celery keeps a chord body's size
    kwargs = data.get("kwargs") or {}
    if kind == "chain":
        return evolve(chain(*(from_dict(t, app) for t in kwargs["tasks"])), options=options)
    if kind == "group":
        return Group(tasks=tuple(member(from_dict(t, app)) for t in kwargs["tasks"]), options=options)
    if kind == "chord":
        header = kwargs["header"]
        members = header["kwargs"]["tasks"] if isinstance(header, Mapping) else header
        body = from_dict(kwargs["body"], app)
        if not isinstance(body, Signature | Chain):
            raise TypeError(f"a chord's body must be a signature or a chain, not {type(body).__name__}")
        return Chord(header=group(from_dict(t, app) for t in members), body=body, options=options)
    sig = Signature.from_dict(data, app)
    links = {
        key: [from_dict(s, app) for s in as_list(sig.options[key])]
        for key in ("link", "link_error")
        if sig.options.get(key)
    }
    return sig.set(**links) if links else sig


def linked(sig: Signature, key: str, app: Celeriac | None = None) -> list[Canvas]:
    """A signature's callbacks (``"link"``) or errbacks (``"link_error"``) as primitives;
    its options may hold them in Celery's dict form (a message's, a Celery client's)."""
    app = app or sig.app
    return [from_dict(s, app) if isinstance(s, Mapping) else s for s in as_list(sig.options.get(key))]
