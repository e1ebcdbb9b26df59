"""Celery's signals (``task_success.connect(fn)``) as a thin layer over the lifecycle hooks.

Each signal is fired where its pluggy hook is called (see :mod:`.lifecycle`), with Celery's
``sender`` and keyword arguments, to the receivers connected process-wide or to one app
(``connect(fn, app=app)``). A signal nobody connected costs one attribute read: the hook
call is skipped altogether when no plugin implements it and no receiver is connected.

The signal objects are module-level, as Celery's are: a receiver connects once per process,
usually at import time of the module that defines it, before or after the app is built.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import overload

from attrs import frozen

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

log = logging.getLogger("celeriac.signals")

Receiver = Callable[..., Any]


@frozen
class Connection:
    """One connected receiver, with the sender and app it is limited to (None: any)."""

    receiver: Receiver
    sender: Any
    app: Any
    uid: Any


class Signal:
    """A named signal: ``connect`` receivers, which are called with ``sender`` and keywords.

    A receiver raising an exception is logged and does not stop the others, nor the task or
    worker that fired the signal (Celery's ``send`` does the same).
    """

    def __init__(self, name: str, arguments: tuple[str, ...] = (), *, doc: str = "") -> None:
        self.name = name
        #: The keyword arguments receivers get besides ``sender`` and ``signal``.
        self.arguments = arguments
        self.__doc__ = doc
        #: Replaced, never changed in place, so that firing reads it without a lock.
        self.receivers: tuple[Connection, ...] = ()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    @overload
    def connect(self, receiver: Receiver, /) -> Receiver: ...

    @overload
    def connect(
        self,
        receiver: None = None,
        /,
        *,
        sender: Any = None,
        app: Celeriac | None = None,
        weak: bool = False,
        dispatch_uid: Any = None,
    ) -> Callable[[Receiver], Receiver]: ...

    @overload
    def connect(
        self,
        receiver: Receiver,
        /,
        *,
        sender: Any = None,
        app: Celeriac | None = None,
        weak: bool = False,
        dispatch_uid: Any = None,
    ) -> Receiver: ...

    def connect(
        self,
        receiver: Receiver | None = None,
        /,
        *,
        sender: Any = None,
        app: Celeriac | None = None,
        weak: bool = False,
        dispatch_uid: Any = None,
    ) -> Any:
        """Connect ``receiver``: ``sig.connect(fn)``, ``@sig.connect`` or ``@sig.connect(sender=...)``.

        :param sender: only calls from this sender (a task, or for task and publish signals
            its name).
        :param app: only calls from this app (None: every app in the process).
        :param weak: accepted for Celery's signature; receivers are always held strongly.
        :param dispatch_uid: connecting twice with the same uid connects once.
        """

        def register(function: Receiver) -> Receiver:
            uid = dispatch_uid if dispatch_uid is not None else (id(function), id(sender), id(app))
            with self._lock:
                if not any(existing.uid == uid for existing in self.receivers):
                    self.receivers = (*self.receivers, Connection(function, sender, app, uid))
            return function

        return register(receiver) if receiver is not None else register

    def disconnect(
        self, receiver: Receiver | None = None, *, sender: Any = None, dispatch_uid: Any = None
    ) -> bool:
        """Disconnect a receiver (by function and sender, or by ``dispatch_uid``); True if it was."""
        with self._lock:
            kept = tuple(
                c
                for c in self.receivers
                if not (
                    (dispatch_uid is not None and c.uid == dispatch_uid)
                    or (dispatch_uid is None and c.receiver == receiver and c.sender is sender)
                )
            )
            changed = len(kept) != len(self.receivers)
            self.receivers = kept
        return changed

    def send(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for ``sender``; returns (receiver, response or exception) pairs."""
        return self.fire(None, sender, **named)

    def fire(self, app: Any, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call the receivers connected for ``app`` (or every app) and ``sender``."""
        responses: list[tuple[Receiver, Any]] = []
        for connection in self.receivers:
            if connection.app is not None and connection.app is not app:
                continue
            if connection.sender is not None and not _same_sender(connection.sender, sender):
                continue
            try:
                response = connection.receiver(signal=self, sender=sender, **named)
            except Exception as exc:
                log.exception("signal %s receiver %r failed", self.name, connection.receiver)
                response = exc
            responses.append((connection.receiver, response))
        return responses


def _same_sender(wanted: Any, sender: Any) -> bool:
    """A receiver for a task matches the task or its name (Celery's publish signals send the
    name, its task signals the task)."""
    if wanted is sender or wanted == sender:
        return True
    name = getattr(sender, "name", None)
    wanted_name = getattr(wanted, "name", wanted)
    return isinstance(name, str) and name == wanted_name


def _signal(name: str, arguments: str, doc: str) -> Signal:
    return Signal(name, tuple(arguments.split()), doc=doc)


# --- task signals ----------------------------------------------------------------------
before_task_publish = _signal(
    "before_task_publish",
    "body exchange routing_key headers properties declare retry_policy",
    "Before a task message is published; sender is the task name. Adding to ``headers`` "
    "adds message headers.",
)
after_task_publish = _signal(
    "after_task_publish", "body exchange routing_key headers", "After a task message was published."
)
task_received = _signal("task_received", "request", "The worker received a task; sender is the consumer.")
task_prerun = _signal("task_prerun", "task_id task args kwargs", "Before a task runs; sender is the task.")
task_postrun = _signal(
    "task_postrun", "task_id task args kwargs retval state", "After a task returned or raised."
)
task_success = _signal("task_success", "result", "A task succeeded; sender is the task.")
task_failure = _signal(
    "task_failure", "task_id exception args kwargs traceback einfo", "A task failed and will not retry."
)
task_retry = _signal("task_retry", "request reason einfo", "A task will be retried.")
task_revoked = _signal(
    "task_revoked", "request terminated signum expired", "A task was revoked or expired, not run."
)
task_rejected = _signal("task_rejected", "message exc", "A message was refused (bad body, not accepted).")
task_unknown = _signal("task_unknown", "name id message exc", "A message named a task this worker lacks.")

# --- worker signals ----------------------------------------------------------------------
worker_init = _signal("worker_init", "", "The worker is starting, before any step; sender is the worker.")
worker_process_init = _signal(
    "worker_process_init",
    "",
    "In each pool child process (prefork), before it runs a task: open per-process connections here.",
)
worker_process_shutdown = _signal(
    "worker_process_shutdown", "pid exitcode", "A pool child process is exiting."
)
worker_ready = _signal("worker_ready", "", "The worker consumes; sender is the worker.")
worker_shutdown = _signal("worker_shutdown", "", "The worker is stopping; sender is the worker.")
beat_init = _signal("beat_init", "", "Beat is starting; sender is the beat service.")
setup_logging = _signal(
    "setup_logging",
    "loglevel logfile format colorize",
    "Before the command line configures logging: when any receiver is connected, celeriac "
    "leaves logging to it.",
)
after_setup_logger = _signal(
    "after_setup_logger",
    "logger loglevel logfile format colorize",
    "After the command line configured logging.",
)

SIGNALS: tuple[Signal, ...] = (
    before_task_publish,
    after_task_publish,
    task_received,
    task_prerun,
    task_postrun,
    task_success,
    task_failure,
    task_retry,
    task_revoked,
    task_rejected,
    task_unknown,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    beat_init,
    setup_logging,
    after_setup_logger,
)
