"""Remote control, the client side: commands broadcast to workers, replies gathered.

Messages follow Celery's mailbox naming: requests go to the ``celery.pidbox`` channel as
``{"method", "arguments", "destination", "ticket", "reply_to"}``, and workers answer with
``{hostname: result}`` and the request's ticket. Where the transport routes replies as kombu
does (:class:`~celeriac._contract.protocols.DirectReplies`), the client reads them from a queue of its
own bound to the direct exchange ``reply.celery.pidbox`` under the ``reply_to`` routing key,
so Celery's workers reach it too; elsewhere they come on the fan-out channel of that name.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from celeriac._contract.protocols import Broadcaster
from celeriac._contract.protocols import DirectReplies
from celeriac._contract.protocols import Subscription
from celeriac._model import states
from celeriac._model.errors import CeleriacError
from celeriac._model.records import Envelope
from celeriac._model.redaction import redact_url

if TYPE_CHECKING:
    from celeriac._client.app import Celeriac

MAILBOX = "celery.pidbox"
REPLIES = "reply.celery.pidbox"


class Control:
    """``app.control``: revoke tasks and talk to running workers."""

    def __init__(self, app: Celeriac) -> None:
        self.app = app

    def _broadcaster(self) -> Broadcaster:
        transport = self.app.transport
        if not isinstance(transport, Broadcaster):
            raise CeleriacError(
                f"the broker {redact_url(self.app.config.broker)!r} has no broadcast channel; "
                "remote control needs a transport with fan-out"
            )
        return transport

    def broadcast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: Sequence[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        cancel: threading.Event | None = None,
    ) -> list[dict[str, Any]]:
        """Send a command to all workers (or those named); with ``reply``, gather answers.

        :param timeout: seconds to wait for replies.
        :param limit: stop after this many replies (e.g. the number of workers expected).
        :param cancel: stop waiting for replies once this is set (a worker that is stopping).
        """
        channel = self._broadcaster()
        ticket = str(uuid.uuid4()) if reply else None
        # The ticket doubles as the routing key of the reply queue (kombu's oid): one queue per call.
        subscription = self._replies(channel, ticket) if ticket else None
        body = {
            "method": method,
            "arguments": arguments or {},
            "destination": list(destination) if destination else None,
            "ticket": ticket,
            "reply_to": {"exchange": REPLIES, "routing_key": ticket} if reply else None,
        }
        if subscription is None:
            channel.broadcast(MAILBOX, self.envelope(body))
            return []
        try:
            channel.broadcast(MAILBOX, self.envelope(body))
            return self._gather(subscription, ticket, timeout, limit, cancel)
        finally:
            subscription.close()

    @staticmethod
    def _replies(channel: Broadcaster, routing_key: str) -> Subscription:
        if isinstance(channel, DirectReplies):
            return channel.reply_queue(REPLIES, routing_key)
        return channel.subscribe(REPLIES)

    def _gather(
        self,
        subscription: Subscription,
        ticket: str | None,
        timeout: float,
        limit: int | None,
        cancel: threading.Event | None = None,
    ) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        # With ``cancel``, wait in slices so that setting it ends the wait within one.
        step = 0.1 if cancel is not None else timeout
        while (remaining := deadline - time.monotonic()) > 0 and (limit is None or len(replies) < limit):
            if cancel is not None and cancel.is_set():
                break
            for envelope in subscription.get(min(remaining, step)):
                if envelope.headers.get("ticket") == ticket:
                    replies.append(self.app.codec.loads(envelope.body, envelope.content_type))
        return replies

    def envelope(self, body: dict[str, Any], **headers: Any) -> Envelope:
        payload, serializer = self.app.codec.dumps(body)
        return Envelope(
            body=payload,
            content_type=serializer.content_type,
            content_encoding=serializer.content_encoding,
            headers={"clock": 0, "expires": time.time() + 60, **headers},
        )

    def revoke(
        self,
        task_id: str | Sequence[str],
        *,
        terminate: bool = False,
        signal: str = "SIGTERM",
        destination: Sequence[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stop tasks from running: each worker skips them and records REVOKED.

        The REVOKED state is also written to the result store at once (a finished task's
        SUCCESS stays). ``terminate`` also stops a task that is already running, where the
        pool can (process pools), with ``signal``; thread pools cannot interrupt a running
        task. With ``reply``, each worker's answer (what it revoked and terminated) is
        gathered for ``timeout`` seconds (or until ``limit`` answered); ``destination`` names the
        only workers to tell.
        """
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        if self.app.result_store_url is not None:
            for one in ids:
                self.app.result_store.store(self.app.results.encode(one, states.REVOKED, "revoked"))
        arguments = {"task_id": ids, "terminate": terminate, "signal": signal}
        return self.broadcast(
            "revoke", arguments, destination=destination, reply=reply, timeout=timeout, limit=limit
        )

    def ping(
        self, *, timeout: float = 1.0, destination: Sequence[str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """``[{"celeriac@host": {"ok": "pong"}}, ...]`` from every worker that answers in time.

        :param limit: return as soon as this many have answered.
        """
        return self.broadcast("ping", destination=destination, reply=True, timeout=timeout, limit=limit)
