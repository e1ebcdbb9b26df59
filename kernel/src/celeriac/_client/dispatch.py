"""Turning a workflow into the messages that start it: on the client, and in the worker
that continues a chain, completes a chord or replaces a task.

A primitive is frozen first (every task and group given its id), so its result handle is
known before anything is sent. Then: a signature is one message; a chain is its first
step's messages, carrying the remaining steps as ``embed.chain`` (reversed, next last); a
group is every member's messages, each member's final task marked with the group id and
index (and, in a chord, the body in ``embed.chord``), published in one call per queue; a
chord is its header's messages, the body waiting in them for the last part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from attrs import evolve

from celeriac._client.canvas import Canvas
from celeriac._client.canvas import Chain
from celeriac._client.canvas import Chord
from celeriac._client.canvas import Group
from celeriac._client.canvas import Signature
from celeriac._client.canvas import as_dict
from celeriac._client.canvas import as_list
from celeriac._client.canvas import chain
from celeriac._client.canvas import new_id
from celeriac._client.canvas_results import result_of
from celeriac._client.canvas_wire import from_dict
from celeriac._client.canvas_wire import linked
from celeriac._client.publish import Outgoing
from celeriac._contract.protocols import CeleryChords
from celeriac._model.message import Embed
from celeriac._model.routing import TaskRoute

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._model.request import TaskRequest


def send(
    app: Celeriac,
    node: Canvas,
    *,
    parent_id: str | None = None,
    root_id: str | None = None,
    rest: Sequence[dict[str, Any]] = (),
) -> Any:
    """Send a workflow; ``rest`` are the steps of an enclosing chain that follow it
    (reversed, as in ``embed.chain``). Returns its result handle."""
    node = node.freeze()
    check_routing(app, node)
    app.publish(messages(app, node, parent_id=parent_id, root_id=root_id, rest=rest))
    return result_of(node, app)


def check_routing(app: Celeriac, node: Canvas) -> None:
    """Refuse, before anything is sent, a ``routing_key`` that no exchange goes with (the
    signature's or its task's), anywhere in the workflow: on a later step it would
    otherwise fail in the worker that continues the chain, not here.

    :raises ValueError: naming the task and the key.
    """
    if isinstance(node, Chain):
        for step in node.tasks:
            check_routing(app, step)
    elif isinstance(node, Group):
        for member in node.tasks:
            check_routing(app, member)
    elif isinstance(node, Chord):
        check_routing(app, node.header)
        check_routing(app, node.body)
    else:
        key = node.options.get("routing_key")
        if (
            key is not None
            and node.options.get("exchange") is None
            and app.options_for(node.task).exchange is None
        ):
            raise ValueError(
                f"routing_key={key!r} of {node.task} needs an exchange (or name the queue with queue=)"
            )
        for callback in (*linked(node, "link", app), *linked(node, "link_error", app)):
            check_routing(app, callback)


def messages(
    app: Celeriac,
    node: Canvas,
    *,
    parent_id: str | None,
    root_id: str | None,
    rest: Sequence[dict[str, Any]] = (),
) -> list[Outgoing]:
    """The messages that start a frozen workflow (saving any group it starts)."""
    if isinstance(node, Signature):
        return [
            signature_message(
                node, app, parent_id=parent_id, root_id=root_id, embed=Embed(chain=tuple(rest) or None)
            )
        ]
    if isinstance(node, Chain):
        if len(node.tasks) > 1:
            app.require_chain_support()
        after = (*rest, *(step.to_dict() for step in reversed(node.tasks[1:])))
        return messages(app, node.tasks[0], parent_id=parent_id, root_id=root_id, rest=after)
    if isinstance(node, Group):
        if rest:
            # A step follows the group (a client that did not make it a chord): as Celery does,
            # the group becomes a chord whose body is that step.
            body = from_dict(rest[-1], app).freeze()
            if not isinstance(body, Signature | Chain):
                raise TypeError(f"a group in a chain must be followed by a task, not {type(body).__name__}")
            upgraded = Chord(header=node, body=body)
            return messages(app, upgraded, parent_id=parent_id, root_id=root_id, rest=rest[:-1])
        return _group_messages(app, node, parent_id=parent_id, root_id=root_id)
    app.require_chord_support()
    if isinstance(store := app.result_store, CeleryChords):
        store.chord_started(node.header.id, len(node.header))
    body = node.body.set(chord_size=len(node.header))
    if rest:
        body = body.set(chain=list(rest))
    header = node.header.set(chord=body.to_dict())
    return _group_messages(app, header, parent_id=parent_id, root_id=root_id)


def _group_messages(
    app: Celeriac, node: Group, *, parent_id: str | None, root_id: str | None
) -> list[Outgoing]:
    if not node.tasks:
        raise ValueError("a group needs at least one task")
    if app.result_store_url is not None:
        result_of(node, app).save()  # so GroupResult.restore(id) works, and a chord finds its header
    membership: dict[str, Any] = {"group_id": node.id}
    if node.options.get("chord"):
        membership["chord"] = node.options["chord"]
    out: list[Outgoing] = []
    for index, member in enumerate(node.tasks):
        marked = member.set_final(**membership, group_index=index)
        out.extend(messages(app, marked, parent_id=parent_id, root_id=root_id))
    return out


def continue_with(
    app: Celeriac,
    data: dict[str, Any],
    args: tuple[Any, ...],
    parent: TaskRequest,
    rest: Sequence[dict[str, Any]] = (),
) -> Any:
    """Start the workflow part ``data`` (a chain's next step, a callback, an errback) that
    follows ``parent``, with ``args`` prepended unless it is immutable."""
    node = from_dict(data, app).clone(args)
    return send(app, node, parent_id=parent.id, root_id=parent.message.root_id or parent.id, rest=rest)


def replace(app: Celeriac, request: TaskRequest, node: Canvas) -> None:
    """Send ``node`` in place of the running ``request``: it takes the task's id (so the
    caller's AsyncResult gets its result), group membership, callbacks and the rest of its
    chain. A group is made a chord gathering its results, as in Celery."""
    if isinstance(node, Group):
        node = chain(node, Signature(task="celery.accumulate", kwargs={"index": 0}, app=app))
    message = request.message
    embed = message.embed
    final: dict[str, Any] = {"task_id": request.id}
    if message.group is not None:
        final.update(group_id=message.group, group_index=message.group_index)
        if embed.chord:
            final["chord"] = embed.chord
    if embed.callbacks:
        final["link"] = [from_dict(c, app) for c in embed.callbacks]
    if embed.errbacks:
        final["link_error"] = [from_dict(e, app) for e in embed.errbacks]
    node = node.set_final(**final)
    send(app, node, parent_id=request.id, root_id=message.root_id or request.id, rest=embed.chain or ())


#: Options a signature may carry that apply_async understands; the rest are kept as they came.
CALL_OPTIONS = (
    "countdown",
    "eta",
    "expires",
    "priority",
    "headers",
    "ignore_result",
    "time_limit",
    "soft_time_limit",
    "shadow",
    "argsrepr",
    "kwargsrepr",
)


def signature_message(
    sig: Signature,
    app: Celeriac,
    *,
    parent_id: str | None = None,
    root_id: str | None = None,
    embed: Embed | None = None,
) -> Outgoing:
    """The protocol 2 message for this call and where it goes: a queue, a TaskRoute for an
    ``exchange``/``routing_key`` set on the signature (kombu's), or None: the task's own."""
    task_id = sig.options.get("task_id") or new_id()
    links = as_list(sig.options.get("link"))
    errors = as_list(sig.options.get("link_error"))
    base = embed or Embed()
    chord = sig.options.get("chord")
    if links or errors or (chord and not base.chord):  # else, the common case: as it came
        embed = evolve(
            base,
            callbacks=(*(base.callbacks or ()), *(as_dict(s) for s in links)) or None,
            errbacks=(*(base.errbacks or ()), *(as_dict(s) for s in errors)) or None,
            chord=base.chord or chord,
        )
    else:
        embed = base
    message = app.build_message(
        sig.task,
        sig.args,
        sig.kwargs,
        task_id=task_id,
        parent_id=parent_id,
        root_id=root_id,
        embed=embed,
        group=sig.options.get("group_id"),
        group_index=sig.options.get("group_index"),
        **{k: sig.options[k] for k in CALL_OPTIONS if k in sig.options},
    )
    queue: str | None = sig.options.get("queue")
    exchange, routing_key = sig.options.get("exchange"), sig.options.get("routing_key")
    serializer: str | None = sig.options.get("serializer")
    if exchange is None and routing_key is None:
        return Outgoing(message=message, route=queue, serializer=serializer)
    return Outgoing(
        message=message,
        route=TaskRoute(queue=queue, exchange=exchange, routing_key=routing_key),
        serializer=serializer,
    )
