"""The webhook event sink: selected events POSTed as JSON batches to one URL.

``send`` runs on the worker's hot path from several threads: it filters by type, takes one
lock and appends to a bounded deque, nothing more. A daemon thread (started by the first
event) posts batches, retries a failing batch with back-off, and disables the sink after
``max_failures`` batches failed in a row, so a dead endpoint costs the worker one
comparison per event and never blocks it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac_webhooks._config import SinkConfig
from celeriac_webhooks._safety import check_url
from celeriac_webhooks._safety import safe_url
from celeriac_webhooks._signing import SIGNATURE_HEADER
from celeriac_webhooks._signing import sign

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("celeriac.webhooks")
#: Seconds ``close`` waits for the last delivery before giving up on it.
CLOSE_TIMEOUT = 5.0


@final
class WebhookSink:
    """An :class:`celeriac.EventSink` that POSTs ``{"sink": name, "events": [...]}`` batches.

    :param name: the ``[webhooks.sinks.NAME]`` table name, used in logs.
    :param settings: the sink's table.
    :param secret: the signing secret (the sink's own, or ``[webhooks] secret``); never logged.
    :param allowed_hosts: ``[webhooks] allowed_hosts``.
    :param transport: an httpx transport, for tests.
    """

    def __init__(
        self,
        name: str,
        settings: SinkConfig,
        *,
        secret: str | None = None,
        allowed_hosts: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        check_url(settings.url, allowed_hosts)  # a pure check: a bad sink stops the worker's start
        self.name = name
        self.settings = settings
        self._secret = secret
        self._types = frozenset(settings.events)
        self._transport = transport
        self._events: deque[Mapping[str, Any]] = deque(maxlen=settings.max_buffer)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._failures = 0
        #: Batches delivered, for monitoring and tests.
        self.delivered = 0
        #: True once the sink gave up; it then drops every event at once.
        self.disabled = False

    def __repr__(self) -> str:
        return f"<WebhookSink {self.name} {safe_url(self.settings.url)}>"

    def send(self, event: Mapping[str, Any]) -> None:
        """Buffer one event if its type is selected; cheap, thread-safe, never does I/O."""
        if self.disabled or (self._types and event.get("type") not in self._types):
            return
        with self._lock:
            events = self._events
            if len(events) == events.maxlen:
                self._dropped += 1
            events.append(event)
            waiting = len(events)
            start = self._thread is None and not self._stop.is_set()
            if start:
                self._thread = threading.Thread(
                    target=self._run, name=f"celeriac-webhook-{self.name}", daemon=True
                )
        if start and self._thread is not None:
            self._thread.start()
        if waiting >= self.settings.batch_size:
            self._wake.set()

    def close(self) -> None:
        """Deliver what is buffered (one attempt per batch, bounded in time) and stop."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
            if thread.is_alive():
                log.warning(
                    "webhook sink %r: still delivering after %.0f s; not waiting", self.name, CLOSE_TIMEOUT
                )

    def pending(self) -> int:
        with self._lock:
            return len(self._events)

    # --- the delivery thread ------------------------------------------------------------

    def _run(self) -> None:
        import httpx

        with httpx.Client(
            timeout=self.settings.timeout, follow_redirects=False, transport=self._transport
        ) as client:
            while not self.disabled:
                self._wake.wait(self.settings.interval)
                self._wake.clear()
                stopping = self._stop.is_set()
                while not self.disabled and (batch := self._take()):
                    self._deliver(client, batch, retry=not stopping)
                if stopping:
                    return

    def _take(self) -> list[Mapping[str, Any]]:
        with self._lock:
            count = min(len(self._events), self.settings.batch_size)
            batch = [self._events.popleft() for _ in range(count)]
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning(
                "webhook sink %r: buffer full (max_buffer = %d), dropped the %d oldest events",
                self.name,
                self.settings.max_buffer,
                dropped,
            )
        return batch

    def _deliver(self, client: httpx.Client, batch: list[Mapping[str, Any]], *, retry: bool) -> None:
        body = json.dumps({"sink": self.name, "events": batch}, separators=(",", ":"), default=repr).encode()
        attempts = 1 + (self.settings.retries if retry else 0)
        problem = ""
        for attempt in range(attempts):
            if attempt:
                # Interrupted by close(): the back-off never delays a worker's shutdown.
                self._stop.wait(self.settings.backoff * 2 ** (attempt - 1))
            problem = self._post(client, body)
            if not problem:
                self._failures = 0
                self.delivered += 1
                return
            if self._stop.is_set():
                break
        self._failures += 1
        log.warning(
            "webhook sink %r: %d events lost, %s (%d of %d failures in a row before the sink is disabled)",
            self.name,
            len(batch),
            problem,
            self._failures,
            self.settings.max_failures,
        )
        if self._failures >= self.settings.max_failures:
            self.disabled = True
            with self._lock:
                self._events.clear()
            log.error(
                "webhook sink %r disabled: %d batches in a row could not be delivered to %s (last: %s); "
                "its events are dropped until the worker restarts",
                self.name,
                self._failures,
                safe_url(self.settings.url),
                problem,
            )

    def _post(self, client: httpx.Client, body: bytes) -> str:
        """One attempt; returns what went wrong, or an empty string."""
        import httpx

        headers = {"Content-Type": "application/json", "User-Agent": "celeriac-webhooks"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        started = time.monotonic()
        try:
            response = client.post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__} after {time.monotonic() - started:.1f} s"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}"
        return ""
