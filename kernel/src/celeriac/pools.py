"""Helpers shared by pool plugins."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celeriac import states
from celeriac.outcome import Disposition
from celeriac.outcome import Outcome
from celeriac.request import TaskRequest

log = logging.getLogger("celeriac.worker")


def run_safely(execute: Callable[[TaskRequest], Outcome], request: TaskRequest) -> Outcome:
    """Run ``execute``; an error escaping it (a bug, not a task failure) requeues the message.

    The executor already turns task exceptions into FAILURE outcomes, so anything reaching
    here means the result could not be stored: giving the message back loses nothing.
    """
    try:
        return execute(request)
    except BaseException as exc:
        log.exception("executing %s[%s] failed outside the task", request.task, request.id)
        return Outcome(
            request=request,
            state=states.FAILURE,
            disposition=Disposition.REQUEUE,
            reason=f"{type(exc).__name__}: {exc}",
        )
