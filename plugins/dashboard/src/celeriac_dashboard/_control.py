"""Remote control and inspection through the app's mailbox (``app.control``), Flower's way.

Workers of both kinds answer: celeriac's and Celery's read the same ``celery.pidbox``
mailbox. Inspection results are cached per worker, as Flower's are, and refreshed on
request (a worker page, ``/api/workers?refresh=1``). Every call blocks for up to the
inspect timeout; the web app runs them in a thread.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import redact

if TYPE_CHECKING:
    from celeriac.plugin import Celeriac

#: What a worker page shows, as Flower inspects it; the task lists only for one worker.
INSPECT_METHODS = (
    "stats",
    "active_queues",
    "registered",
    "scheduled",
    "active",
    "reserved",
    "revoked",
    "conf",
)
_TASK_LISTS = frozenset({"scheduled", "active", "reserved", "revoked"})
#: Replies masked before anything shows them: a Celery worker's ``conf`` is its whole
#: configuration as set, secrets included, and ``stats`` names its broker.
_MASKED = frozenset({"conf", "stats"})


@frozen(kw_only=True)
class Reply:
    """One worker's answer to a control command: ``ok`` text, or ``error`` (None: no answer)."""

    ok: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.ok is not None


@final
class Inspector:
    """Cached inspection replies by worker, and the control commands Flower's buttons send."""

    def __init__(self, app: Celeriac, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self.workers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def refresh(self, workername: str | None = None) -> dict[str, dict[str, Any]]:
        """Ask every worker (or one) and update the cache; returns the cache."""
        methods = [m for m in INSPECT_METHODS if workername or m not in _TASK_LISTS]
        with ThreadPoolExecutor(max_workers=len(methods)) as pool:
            answers = list(pool.map(lambda method: (method, self._ask(method, workername)), methods))
        with self._lock:
            for method, replies in answers:
                for reply in replies:
                    for hostname, value in reply.items():
                        info = self.workers.setdefault(hostname, {})
                        masked = method in _MASKED and isinstance(value, dict)
                        info[method] = redact(value) if masked else value
                        info["timestamp"] = time.time()
            return {name: dict(info) for name, info in self.workers.items()}

    def cached(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(info) for name, info in self.workers.items()}

    def _ask(self, method: str, workername: str | None) -> list[dict[str, Any]]:
        arguments = {"safe": True} if method == "active" else None
        return self.app.control.broadcast(
            method,
            arguments,
            destination=[workername] if workername else None,
            reply=True,
            timeout=self.timeout,
            limit=1 if workername else None,
        )

    def command(self, workername: str, method: str, arguments: dict[str, Any] | None = None) -> Reply:
        """Send ``method`` to one worker and wait for its answer."""
        replies = self.app.control.broadcast(
            method, arguments, destination=[workername], reply=True, timeout=self.timeout, limit=1
        )
        for reply in replies:
            answer = reply.get(workername)
            if isinstance(answer, dict):
                if "ok" in answer:
                    return Reply(ok=str(answer["ok"]), error=None)
                return Reply(ok=None, error=str(answer.get("error", "Unknown reason")))
        return Reply(ok=None, error="Unknown reason" if replies else "no reply within the inspect timeout")

    def shutdown(self, workername: str) -> None:
        """Ask a worker to stop (warm); no reply is awaited, as in Flower."""
        self.app.control.broadcast("shutdown", destination=[workername])
