"""Pushing changes to open pages: a hub of subscribers, fed from the event thread.

Pages hold a server-sent events stream (``/live``). The event thread publishes one small
message per ``live_interval`` that says what changed (task ids, workers, queues); each
page re-reads the part it shows. A page that falls behind loses old messages, never the
newest, so it catches up on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any
from typing import final

#: Messages a slow page may have waiting before older ones are dropped.
_BACKLOG = 32
#: Seconds between keep-alive comments on an idle stream (proxies close silent connections).
KEEPALIVE = 15.0


@final
class Hub:
    """Subscribers (one asyncio queue per open page) on the server's event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[str]] = set()
        self._lock = threading.Lock()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the server's loop; called once it runs."""
        self._loop = loop

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every page; safe from any thread."""
        loop = self._loop
        if loop is None or not self._queues or loop.is_closed():
            return
        text = json.dumps(message, default=str)
        # RuntimeError: the loop closed between the check and the call.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._deliver, text)

    def _deliver(self, text: str) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(text)

    async def stream(self, disconnected: Any) -> AsyncIterator[str]:
        """Server-sent events for one page, until ``disconnected()`` says it left."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=_BACKLOG)
        self._queues.add(queue)
        try:
            yield "retry: 1000\n\n"
            while not await disconnected():
                try:
                    text = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {text}\n\n"
        finally:
            self._queues.discard(queue)
