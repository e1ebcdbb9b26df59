"""Typed calls of the lifecycle hooks (publish, app, worker, task): the one other place
besides :mod:`.plugins` that calls ``pm.hook``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import pluggy

from celeriac._contract import signals

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task
    from celeriac._model.message import TaskMessage
    from celeriac._model.request import TaskRequest
    from celeriac._worker.worker import Worker

log = logging.getLogger("celeriac.plugins")


class Lifecycle:
    """Typed calls of the lifecycle hooks, each also firing its Celery signal.

    Which hooks have implementations is computed once, so a hook nobody implements and whose
    signal has no receiver costs a set lookup and an attribute read on the hot path. Task
    hooks are isolated: an exception in a monitoring plugin is logged and never changes the
    task's outcome (their specs promise this); signal receivers are isolated the same way.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._hook = pm.hook
        self._implemented = frozenset(
            name for name in _LIFECYCLE_HOOKS if getattr(pm.hook, name).get_hookimpls()
        )
        #: The app these hooks belong to (set once it is built), for per-app signal receivers.
        self.app: Celeriac | None = None

    def implements(self, hook: str) -> bool:
        """Does any plugin implement this lifecycle hook (``"celeriac_task_prerun"``), or
        does a receiver listen to its signal?"""
        signal = _SIGNAL_OF.get(hook)
        return hook in self._implemented or (signal is not None and bool(signal.receivers))

    # --- publishing -------------------------------------------------------------------------

    def before_publish(self, message: TaskMessage, queue: str, app: Celeriac) -> None:
        if "celeriac_before_publish" in self._implemented:
            self._hook.celeriac_before_publish(message=message, queue=queue, app=app)
        if signals.before_task_publish.receivers:
            headers = message.headers()
            signals.before_task_publish.fire(
                app,
                message.task,
                body=message.body(),
                exchange="",
                routing_key=queue,
                headers=headers,
                properties=message.properties(),
                declare=[],
                retry_policy=None,
            )
            # What a receiver added to ``headers`` travels with the message, as in Celery.
            protocol = _PROTOCOL_HEADERS
            extra = message.extra_headers
            for key, value in headers.items():
                if key not in protocol and isinstance(extra, dict):
                    extra[key] = value

    def after_publish(self, message: TaskMessage, queue: str, app: Celeriac) -> None:
        if "celeriac_after_publish" in self._implemented:
            self._hook.celeriac_after_publish(message=message, queue=queue, app=app)
        if signals.after_task_publish.receivers:
            signals.after_task_publish.fire(
                app,
                message.task,
                body=message.body(),
                exchange="",
                routing_key=queue,
                headers=message.headers(),
            )

    # --- app and worker -------------------------------------------------------------------

    def app_configured(self, app: Celeriac) -> None:
        self._hook.celeriac_app_configured(app=app)

    def app_closing(self, app: Celeriac) -> None:
        try:
            self._hook.celeriac_app_closing(app=app)
        except Exception:
            # The app's own connections still close: a plugin's failure must not leak them.
            log.exception("plugin hook celeriac_app_closing failed; closing the app's connections anyway")

    def worker_init(self, worker: Worker) -> None:
        self._hook.celeriac_worker_init(worker=worker)
        signals.worker_init.fire(worker.app, worker)

    def worker_ready(self, worker: Worker) -> None:
        self._hook.celeriac_worker_ready(worker=worker)
        signals.worker_ready.fire(worker.app, worker)

    def worker_shutdown(self, worker: Worker) -> None:
        self._hook.celeriac_worker_shutdown(worker=worker)
        signals.worker_shutdown.fire(worker.app, worker)

    def worker_process_init(self, app: Celeriac) -> None:
        """In a pool's child process, before it runs anything (prefork)."""
        self._hook.celeriac_worker_process_init(app=app)
        signals.worker_process_init.fire(app, None)

    def worker_process_shutdown(self, app: Celeriac, exitcode: int) -> None:
        """In a pool's child process, as it exits."""
        self._hook.celeriac_worker_process_shutdown(app=app, exitcode=exitcode)
        signals.worker_process_shutdown.fire(app, None, pid=os.getpid(), exitcode=exitcode)

    def beat_init(self, app: Celeriac, service: object) -> None:
        self._hook.celeriac_beat_init(app=app, service=service)
        signals.beat_init.fire(app, service)

    # --- tasks ------------------------------------------------------------------------------

    def task_received(self, request: TaskRequest) -> None:
        self._isolated("celeriac_task_received", request=request)
        if signals.task_received.receivers:
            signals.task_received.fire(self.app, self.app, request=request)

    def task_unknown(self, message: TaskMessage, reason: str) -> None:
        self._isolated("celeriac_task_unknown", message=message, reason=reason)
        if signals.task_unknown.receivers:
            signals.task_unknown.fire(
                self.app, self.app, name=message.task, id=message.id, message=message, exc=LookupError(reason)
            )

    def task_rejected(self, message: object, reason: str) -> None:
        self._isolated("celeriac_task_rejected", message=message, reason=reason)
        if signals.task_rejected.receivers:
            signals.task_rejected.fire(self.app, self.app, message=message, exc=ValueError(reason))

    def task_prerun(self, task: Task[Any, Any], request: TaskRequest) -> None:
        self._isolated("celeriac_task_prerun", task=task, request=request)
        if signals.task_prerun.receivers:
            signals.task_prerun.fire(
                task.app, task, task_id=request.id, task=task, args=request.args, kwargs=request.kwargs
            )

    def task_postrun(self, task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
        self._isolated("celeriac_task_postrun", task=task, request=request, state=state, retval=retval)
        if signals.task_postrun.receivers:
            signals.task_postrun.fire(
                task.app,
                task,
                task_id=request.id,
                task=task,
                args=request.args,
                kwargs=request.kwargs,
                retval=retval,
                state=state,
            )

    def task_success(self, task: Task[Any, Any], request: TaskRequest, result: Any) -> None:
        self._isolated("celeriac_task_success", task=task, request=request, result=result)
        if signals.task_success.receivers:
            signals.task_success.fire(task.app, task, result=result)

    def task_failure(
        self, task: Task[Any, Any], request: TaskRequest, exception: BaseException, traceback: str
    ) -> None:
        self._isolated(
            "celeriac_task_failure", task=task, request=request, exception=exception, traceback=traceback
        )
        if signals.task_failure.receivers:
            signals.task_failure.fire(
                task.app,
                task,
                task_id=request.id,
                exception=exception,
                args=request.args,
                kwargs=request.kwargs,
                traceback=traceback,
                einfo=traceback,
            )

    def task_retry(self, task: Task[Any, Any], request: TaskRequest, reason: BaseException) -> None:
        self._isolated("celeriac_task_retry", task=task, request=request, reason=reason)
        if signals.task_retry.receivers:
            signals.task_retry.fire(task.app, task, request=request, reason=reason, einfo=None)

    def task_revoked(self, request: TaskRequest, reason: str, extra: Mapping[str, Any]) -> None:
        self._isolated("celeriac_task_revoked", request=request, reason=reason, extra=extra)
        if signals.task_revoked.receivers:
            app = self.app
            task = app.tasks.get(request.task) if app is not None else None
            signals.task_revoked.fire(
                app,
                task if task is not None else request.task,
                request=request,
                terminated=bool(extra.get("terminated", False)),
                signum=extra.get("signum"),
                expired=bool(extra.get("expired", False)),
            )

    def _isolated(self, name: str, **kwargs: Any) -> None:
        if name not in self._implemented:
            return
        try:
            getattr(self._hook, name)(**kwargs)
        except Exception:
            log.exception("plugin hook %s failed; the task's outcome is unchanged", name)


_LIFECYCLE_HOOKS = (
    "celeriac_task_received",
    "celeriac_task_unknown",
    "celeriac_task_rejected",
    "celeriac_before_publish",
    "celeriac_after_publish",
    "celeriac_task_prerun",
    "celeriac_task_postrun",
    "celeriac_task_success",
    "celeriac_task_failure",
    "celeriac_task_retry",
    "celeriac_task_revoked",
)

_SIGNAL_OF = {
    "celeriac_before_publish": signals.before_task_publish,
    "celeriac_after_publish": signals.after_task_publish,
    "celeriac_task_received": signals.task_received,
    "celeriac_task_unknown": signals.task_unknown,
    "celeriac_task_rejected": signals.task_rejected,
    "celeriac_task_prerun": signals.task_prerun,
    "celeriac_task_postrun": signals.task_postrun,
    "celeriac_task_success": signals.task_success,
    "celeriac_task_failure": signals.task_failure,
    "celeriac_task_retry": signals.task_retry,
    "celeriac_task_revoked": signals.task_revoked,
}

#: Headers of the protocol itself; anything else a before_task_publish receiver puts in
#: ``headers`` is kept as a custom header.
_PROTOCOL_HEADERS = frozenset(
    [
        "lang",
        "task",
        "id",
        "shadow",
        "eta",
        "expires",
        "group",
        "group_index",
        "retries",
        "timelimit",
        "root_id",
        "parent_id",
        "argsrepr",
        "kwargsrepr",
        "origin",
        "ignore_result",
        "replaced_task_nesting",
        "stamped_headers",
        "stamps",
    ]
)
