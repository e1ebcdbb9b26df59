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

from attrs import evolve

from celeriac import states
from celeriac.canvas import Signature
from celeriac.errors import ChordError
from celeriac.message import Embed
from celeriac.protocols import ChordCounter
from celeriac.request import TaskRequest

if TYPE_CHECKING:
    from celeriac.app import Celeriac

log = logging.getLogger("celeriac.worker")


def after_task(app: Celeriac, request: TaskRequest, state: str, value: Any) -> None:
    """Continue the workflow ``request`` belongs to, given how its task ended."""
    message = request.message
    embed = message.embed
    if state == states.SUCCESS:
        if embed.chain:
            *rest, following = embed.chain
            _send(app, Signature.from_dict(following, app), value, request, Embed(chain=tuple(rest) or None))
        for callback in embed.callbacks or ():
            _send(app, Signature.from_dict(callback, app), value, request)
    elif state == states.FAILURE:
        for errback in embed.errbacks or ():
            _send_errback(app, Signature.from_dict(errback, app), message.id, request)
    if embed.chord and message.group and state in states.READY_STATES:
        part_done(app, message.group, message.id, Signature.from_dict(embed.chord, app))


def part_done(app: Celeriac, group_id: str, task_id: str, body: Signature) -> None:
    """Count one finished header task; the call that completes the count runs the body."""
    store = app.result_store
    if not isinstance(store, ChordCounter):
        log.error("chord %s cannot complete: the result store counts no chord parts", group_id)
        return
    if store.chord_part_done(group_id, task_id, int(body.options.get("chord_size") or 0)):
        complete_chord(app, group_id, body)


def complete_chord(app: Celeriac, group_id: str, body: Signature) -> None:
    """All header tasks finished: run the body with their results, or fail it with a ChordError."""
    from celeriac.result import GroupResult

    header = GroupResult.restore(group_id, app)
    records = app.result_store.get_many([r.id for r in header.results])
    body_id = body.options["task_id"]
    values = []
    for member, record in zip(header.results, records, strict=True):
        meta = app.results.decode(record) if record is not None else None
        if meta is None or meta.state != states.SUCCESS:
            state = meta.state if meta is not None else "missing"
            detail = meta.result if meta is not None else None
            error = ChordError(f"chord {group_id}: header task {member.id} ended {state}: {detail}")
            log.error("%s; the chord body %s[%s] is not run", error, body.task, body_id)
            app.result_store.store(app.results.encode(body_id, states.FAILURE, error))
            for errback in body.options.get("link_error") or ():
                _send_errback(app, errback, body_id, None)
            return
        values.append(meta.result)
    args = body.args if body.immutable else (values, *body.args)
    app.send_message(evolve(body, args=args).message(app, parent_id=group_id, root_id=group_id))


def _send(app: Celeriac, sig: Signature, value: Any, parent: TaskRequest, embed: Embed | None = None) -> None:
    args = sig.args if sig.immutable else (value, *sig.args)
    outgoing = evolve(sig, args=args).message(
        app, parent_id=parent.id, root_id=parent.message.root_id or parent.id, embed=embed
    )
    app.send_message(outgoing)


def _send_errback(app: Celeriac, sig: Signature, failed_id: str, parent: TaskRequest | None) -> None:
    # Celery's classic errback signature: the id of the task that failed comes first.
    root = parent.message.root_id if parent is not None else failed_id
    app.send_message(evolve(sig, args=(failed_id, *sig.args)).message(app, parent_id=failed_id, root_id=root))
