"""Task states and their precedence, as in Celery.

A state with higher precedence wins when two updates race: a late STARTED must never
hide a SUCCESS that was already stored.
"""

from __future__ import annotations

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
RETRY = "RETRY"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
#: Not a stored state: the task raised Ignore, so nothing was recorded for it.
IGNORED = "IGNORED"

#: States after which the task will not change again.
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
#: States of a task not yet finished.
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
#: States that mean the task did not succeed.
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
#: States whose result is an exception.
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
ALL_STATES = READY_STATES | UNREADY_STATES

# Celery's order, most important first; unknown (custom) states rank just above PENDING.
_PRECEDENCE = [SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING]
_UNKNOWN_INDEX = _PRECEDENCE.index(None)


def precedence(state: str) -> int:
    """Lower numbers win: ``precedence(SUCCESS) < precedence(STARTED)``."""
    try:
        return _PRECEDENCE.index(state)
    except ValueError:
        return _UNKNOWN_INDEX
