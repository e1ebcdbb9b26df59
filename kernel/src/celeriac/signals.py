"""Celery's signals, for task authors: ``from celeriac.signals import task_success``.

Connect a receiver process-wide (``task_success.connect(fn)``, ``@task_success.connect``)
or for one app (``task_success.connect(fn, app=app)``), optionally for one sender
(``sender=add`` or ``sender="proj.add"``). Receivers get ``sender``, ``signal`` and Celery's
keyword arguments for that signal (see docs/signals.md); a receiver should accept
``**kwargs`` so that arguments added later do not break it. A signal nobody connected
costs nothing on the task path.
"""

from celeriac._contract.signals import Signal
from celeriac._contract.signals import after_setup_logger
from celeriac._contract.signals import after_task_publish
from celeriac._contract.signals import beat_init
from celeriac._contract.signals import before_task_publish
from celeriac._contract.signals import setup_logging
from celeriac._contract.signals import task_failure
from celeriac._contract.signals import task_postrun
from celeriac._contract.signals import task_prerun
from celeriac._contract.signals import task_received
from celeriac._contract.signals import task_rejected
from celeriac._contract.signals import task_retry
from celeriac._contract.signals import task_revoked
from celeriac._contract.signals import task_success
from celeriac._contract.signals import task_unknown
from celeriac._contract.signals import worker_init
from celeriac._contract.signals import worker_process_init
from celeriac._contract.signals import worker_process_shutdown
from celeriac._contract.signals import worker_ready
from celeriac._contract.signals import worker_shutdown

__all__ = [
    "Signal",
    "after_setup_logger",
    "after_task_publish",
    "beat_init",
    "before_task_publish",
    "setup_logging",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
]
