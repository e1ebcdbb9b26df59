"""Reading events back from the ``celeryev`` channel."""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import Broadcaster
from celeriac.plugin import Envelope
from celeriac.plugin import Subscription
from celeriac_events._wire import CONTENT_TYPE
from celeriac_events._wire import EVENT_CHANNEL

if TYPE_CHECKING:
    from celeriac.plugin import Codec

log = logging.getLogger("celeriac.events")


def decode_events(envelope: Envelope, codec: Codec | None = None) -> list[dict[str, Any]]:
    """The events one envelope carries: a batch (a list) or a single event (Celery's usual shape).

    JSON is decoded directly, since it cannot run code; any other content type goes through
    ``codec``, and so through its ``accept`` list. What is not an event is skipped with a warning.
    """
    try:
        if envelope.content_type == CONTENT_TYPE:
            body = json.loads(envelope.body)
        elif codec is not None:
            body = codec.loads(envelope.body, envelope.content_type, envelope.headers.get("compression"))
        else:
            raise ValueError(f"no codec to decode {envelope.content_type!r}")
    except Exception as exc:
        log.warning("skipped an undecodable event message: %s", exc)
        return []
    items = body if isinstance(body, list) else [body]
    events = [item for item in items if isinstance(item, dict) and isinstance(item.get("type"), str)]
    if len(events) != len(items):
        log.warning("skipped %d items that are not events", len(items) - len(events))
    return events


@final
class EventReceiver:
    """Events broadcast after the subscription started, decoded; a context manager.

    Build one with :func:`subscribe_events`.
    """

    def __init__(self, subscription: Subscription, codec: Codec | None = None) -> None:
        self._subscription = subscription
        self._codec = codec

    def get(self, timeout: float) -> list[dict[str, Any]]:
        """Events that arrived, waiting at most ``timeout`` seconds for the first message."""
        return [
            event
            for envelope in self._subscription.get(timeout)
            for event in decode_events(envelope, self._codec)
        ]

    def close(self) -> None:
        self._subscription.close()

    def __enter__(self) -> EventReceiver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def subscribe_events(
    transport: Broadcaster, codec: Codec | None = None, *, channel: str = EVENT_CHANNEL
) -> EventReceiver:
    """Start listening to the events of every worker on the transport's broker.

    :param codec: decodes events that are not JSON (an app's ``app.codec``).
    """
    return EventReceiver(transport.subscribe(channel), codec)
