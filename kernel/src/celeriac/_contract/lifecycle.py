"""Typed calls of the lifecycle hooks (publish, app, worker, task): the one other place
besides :mod:`.plugins` that calls ``pm.hook``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import pluggy

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac
    from celeriac._client.task import Task
    from celeriac._model.message import TaskMessage
    from celeriac._model.request import TaskRequest
    from celeriac._worker.worker import Worker

log = logging.getLogger("celeriac.plugins")


class Lifecycle:
    """Typed calls of the lifecycle hooks.

    Which hooks have implementations is computed once, so a hook nobody implements costs
    one set lookup on the hot path. Task hooks are isolated: an exception in a monitoring
    plugin is logged and never changes the task's outcome (their specs promise this).
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._hook = pm.hook
        self._implemented = frozenset(
            name for name in _LIFECYCLE_HOOKS if getattr(pm.hook, name).get_hookimpls()
        )

    def implements(self, hook: str) -> bool:
        """Does any plugin implement this lifecycle hook (``"celeriac_task_prerun"``)?"""
        return hook in self._implemented

    def before_publish(self, message: TaskMessage, queue: str, app: Celeriac) -> None:
        if "celeriac_before_publish" in self._implemented:
            self._hook.celeriac_before_publish(message=message, queue=queue, app=app)

    def after_publish(self, message: TaskMessage, queue: str, app: Celeriac) -> None:
        if "celeriac_after_publish" in self._implemented:
            self._hook.celeriac_after_publish(message=message, queue=queue, app=app)

    def app_configured(self, app: Celeriac) -> None:
        self._hook.celeriac_app_configured(app=app)

    def worker_ready(self, worker: Worker) -> None:
        self._hook.celeriac_worker_ready(worker=worker)

    def worker_shutdown(self, worker: Worker) -> None:
        self._hook.celeriac_worker_shutdown(worker=worker)

    def task_prerun(self, task: Task[Any, Any], request: TaskRequest) -> None:
        self._isolated("celeriac_task_prerun", task=task, request=request)

    def task_postrun(self, task: Task[Any, Any], request: TaskRequest, state: str, retval: Any) -> None:
        self._isolated("celeriac_task_postrun", task=task, request=request, state=state, retval=retval)

    def task_success(self, task: Task[Any, Any], request: TaskRequest, result: Any) -> None:
        self._isolated("celeriac_task_success", task=task, request=request, result=result)

    def task_failure(
        self, task: Task[Any, Any], request: TaskRequest, exception: BaseException, traceback: str
    ) -> None:
        self._isolated(
            "celeriac_task_failure", task=task, request=request, exception=exception, traceback=traceback
        )

    def task_retry(self, task: Task[Any, Any], request: TaskRequest, reason: BaseException) -> None:
        self._isolated("celeriac_task_retry", task=task, request=request, reason=reason)

    def task_revoked(self, request: TaskRequest, reason: str, extra: Mapping[str, Any]) -> None:
        self._isolated("celeriac_task_revoked", request=request, reason=reason, extra=extra)

    def _isolated(self, name: str, **kwargs: Any) -> None:
        if name not in self._implemented:
            return
        try:
            getattr(self._hook, name)(**kwargs)
        except Exception:
            log.exception("plugin hook %s failed; the task's outcome is unchanged", name)


_LIFECYCLE_HOOKS = (
    "celeriac_before_publish",
    "celeriac_after_publish",
    "celeriac_task_prerun",
    "celeriac_task_postrun",
    "celeriac_task_success",
    "celeriac_task_failure",
    "celeriac_task_retry",
    "celeriac_task_revoked",
)
