"""Remote-control replies on a transport with ``DirectReplies``: routed by ``reply_to``, not fanned out."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac import testing
from celeriac._worker.control import _reply_route
from celeriac.plugin import DirectReplies
from celeriac.plugin import Envelope
from celeriac.plugin import TransportSpec
from celeriac.plugin import hookimpl
from celeriac.testing import MemorySubscription
from celeriac.testing import MemoryTransport
from celeriac.testing import worker_thread


class DirectMemoryTransport(MemoryTransport):
    """``memory://`` plus a direct exchange: a test double, so inheriting is the short way."""

    def __init__(self) -> None:
        super().__init__(30.0)
        self.bound: dict[tuple[str, str], MemorySubscription] = {}
        self.sent: list[tuple[str, str]] = []
        self.fanned: list[str] = []
        self._lock = threading.Lock()

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        self.fanned.append(channel)
        super().broadcast(channel, envelope)

    def send_reply(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        self.sent.append((exchange, routing_key))
        with self._lock:
            queue = self.bound.get((exchange, routing_key))
        if queue is not None:
            queue.put(envelope)

    def reply_queue(self, exchange: str, routing_key: str) -> MemorySubscription:
        queue = MemorySubscription()
        with self._lock:
            self.bound[(exchange, routing_key)] = queue
        return queue


class DirectPlugin:
    def __init__(self) -> None:
        self.transport = DirectMemoryTransport()

    @hookimpl
    def celeriac_add_transports(self) -> Sequence[TransportSpec]:
        return [TransportSpec(schemes=("direct-memory",), factory=lambda url, config: self.transport)]


def test_replies_take_the_reply_to_route_when_the_transport_has_one() -> None:
    plugin = DirectPlugin()
    assert isinstance(plugin.transport, DirectReplies)
    app = Celeriac("tests", broker="direct-memory://", plugins=[testing, plugin], env={}, config=False)
    with worker_thread(app, hostname="alpha@test"):
        deadline = time.monotonic() + 5
        replies: list[dict[str, Any]] = []
        while not replies and time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5, limit=1)
        assert replies == [{"alpha@test": {"ok": "pong"}}]
    exchange, routing_key = plugin.transport.sent[-1]
    assert exchange == "reply.celery.pidbox" and (exchange, routing_key) in plugin.transport.bound
    assert "reply.celery.pidbox" not in plugin.transport.fanned  # requests fan out, replies do not
    assert "celery.pidbox" in plugin.transport.fanned


@pytest.mark.parametrize(
    ("reply_to", "route"),
    [
        ({"exchange": "reply.celery.pidbox", "routing_key": "oid"}, ("reply.celery.pidbox", "oid")),
        ({"exchange": "reply.celery.pidbox", "routing_key": ""}, None),
        ({"exchange": "", "routing_key": "oid"}, None),
        ({"routing_key": "oid"}, None),
        ("reply.celery.pidbox", None),
        (None, None),
    ],
)
def test_reply_route_needs_an_exchange_and_a_routing_key(reply_to: Any, route: Any) -> None:
    assert _reply_route(reply_to) == route
