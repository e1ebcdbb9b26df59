"""What a worker does after a task that is part of a workflow: the next chain step,
callbacks and errbacks, and the chord body once the last header task finished.

Runs in the thread that ran the task, after its result was stored. An error here (the
broker is unreachable) propagates: the message is requeued and the task runs again,
which is safe because SUCCESS is never overwritten and chord parts are counted once per
task id. A workflow is at-least-once, like its tasks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any

from celeriac._client.canvas import Canvas
from celeriac._client.canvas_results import final_task
from celeriac._client.canvas_wire import from_dict
from celeriac._client.canvas_wire import linked
from celeriac._client.dispatch import continue_with
from celeriac._client.dispatch import send
from celeriac._contract.protocols import CeleryChords
from celeriac._contract.protocols import ChordCounter
from celeriac._model import states
from celeriac._model.errors import ChordError
from celeriac._model.request import TaskRequest

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.worker")


def after_task(app: Celeriac, request: TaskRequest, state: str, value: Any) -> None:
    """Continue the workflow ``request`` belongs to, given how its task ended.

    An ignored task (``Ignore``) starts no next step or callback, but still counts as a
    finished chord part, so its chord fails with a ChordError instead of waiting forever.
    """
    message = request.message
    embed = message.embed
    if state == states.SUCCESS:
        if embed.chain:
            *rest, following = embed.chain
            continue_with(app, following, (value,), request, rest)
        for callback in embed.callbacks or ():
            continue_with(app, callback, (value,), request)
    elif state == states.FAILURE:
        for errback in embed.errbacks or ():
            # Celery's classic errback signature: the id of the task that failed comes first.
            continue_with(app, errback, (message.id,), request)
    if embed.chord and message.group and (state in states.READY_STATES or state == states.IGNORED):
        part_done(app, message.group, message.id, from_dict(embed.chord, app), message.group_index)


def part_done(app: Celeriac, group_id: str, task_id: str, body: Canvas, index: int | None = None) -> None:
    """Count one finished header task; the call that completes the count runs the body."""
    store = app.result_store
    if not isinstance(store, ChordCounter):
        log.error("chord %s cannot complete: the result store counts no chord parts", group_id)
        return
    if store.chord_part_done(group_id, task_id, int(body.options.get("chord_size") or 0), index):
        complete_chord(app, group_id, body)


def complete_chord(app: Celeriac, group_id: str, body: Canvas) -> None:
    """All header tasks finished: run the body with their results, or fail it with a ChordError."""
    member_ids = _header_ids(app, group_id)
    if member_ids is None:
        _fail_chord(app, body, ChordError(f"chord {group_id}: its header group was not saved"))
        return
    records = app.result_store.get_many(member_ids)
    values = []
    for member_id, record in zip(member_ids, records, strict=True):
        meta = app.results.decode(record) if record is not None else None
        if meta is None or meta.state != states.SUCCESS:
            state = meta.state if meta is not None else "missing"
            detail = meta.result if meta is not None else None
            error = ChordError(f"chord {group_id}: header task {member_id} ended {state}: {detail}")
            _fail_chord(app, body, error)
            return
        values.append(meta.result)
    rest = body.options.get("chain") or ()
    send(app, body.clone((values,)), parent_id=group_id, root_id=group_id, rest=rest)


def _header_ids(app: Celeriac, group_id: str) -> list[str] | None:
    """The header's task ids in order: from the saved group, else (a chord sent by a Celery
    client, which saves none) from the store's count of its parts."""
    from celeriac._client.result import GroupResult

    try:
        return [r.id for r in GroupResult.restore(group_id, app).results]
    except KeyError:
        store = app.result_store
        return store.chord_members(group_id) if isinstance(store, CeleryChords) else None


def _fail_chord(app: Celeriac, body: Canvas, error: ChordError) -> None:
    body = body.freeze()
    log.error("%s; the chord body %s is not run", error, body.id)
    app.result_store.store(app.results.encode(body.id, states.FAILURE, error))
    for errback in linked(final_task(body), "link_error", app):
        send(app, errback.clone((body.id,)), parent_id=body.id, root_id=body.id)
