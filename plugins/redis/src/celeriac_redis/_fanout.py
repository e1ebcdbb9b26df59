"""Broadcast over Redis pub/sub: every subscriber listening gets every message, at most once.

Channels follow kombu's fan-out layout with ``fanout_patterns`` (its default): a message
with a routing key is PUBLISHed on ``<channel>/<routing key>``, one without on ``<channel>``
itself. Celery's event dispatchers publish on ``/<db>.celeryev/task.succeeded`` and its
receivers PSUBSCRIBE ``/<db>.celeryev/*``; a subscription here listens to both shapes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import Envelope
from celeriac_redis._client import pubsub as make_pubsub

if TYPE_CHECKING:
    import redis
    from redis.client import PubSub

log = logging.getLogger(__name__)
_SUBSCRIBE_TIMEOUT = 10.0
_CONFIRMATIONS = frozenset({"subscribe", "psubscribe"})
_MESSAGES = frozenset({"message", "pmessage"})
#: Characters PSUBSCRIBE reads as glob syntax; a channel name is matched literally.
_GLOB = re.compile(r"([*?\[\]\\])")


def routing_key(envelope: Envelope) -> str:
    """The routing key kombu records in ``properties.delivery_info``, or ``""``."""
    info = envelope.properties.get("delivery_info")
    if isinstance(info, Mapping):
        return str(info.get("routing_key") or "")
    return ""


@final
class Fanout:
    """PUBLISH and SUBSCRIBE on channels named by ``channel_name``, with one envelope encoding."""

    def __init__(
        self,
        client: redis.Redis,
        channel_name: Callable[[str], str],
        encode: Callable[[Envelope], bytes],
        decode: Callable[[bytes], Envelope],
    ) -> None:
        self._client = client
        self._channel_name = channel_name
        self._encode = encode
        self._decode = decode

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        """PUBLISH on the channel, or on ``<channel>/<routing key>`` when the envelope names one."""
        name = self._channel_name(channel)
        key = routing_key(envelope)
        self._client.publish(f"{name}/{key}" if key else name, self._encode(envelope))

    def subscribe(self, channel: str) -> RedisSubscription:
        """Subscribe and wait for the server's confirmations, so nothing sent after this returns is missed.

        SUBSCRIBE takes the channel itself, PSUBSCRIBE every routing key under it.
        """
        pubsub = make_pubsub(self._client)
        name = self._channel_name(channel)
        pubsub.subscribe(name)
        pubsub.psubscribe(_GLOB.sub(r"\\\1", name) + "/*")
        confirmed = 0
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        while True:
            message = pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
            if message is not None and message["type"] in _CONFIRMATIONS:
                confirmed += 1
                if confirmed == 2:
                    return RedisSubscription(pubsub, self._decode)
            if time.monotonic() > deadline:
                pubsub.close()
                raise TimeoutError(f"Redis did not confirm the subscription to {name!r}")


@final
class RedisSubscription:
    """Messages of one channel and its routing keys since the subscription; a connection of its own."""

    def __init__(self, pubsub: PubSub, decode: Callable[[bytes], Envelope]) -> None:
        self._pubsub = pubsub
        self._decode = decode

    def get(self, timeout: float) -> list[Envelope]:
        """What arrived, waiting at most ``timeout`` seconds for the first message."""
        received: list[Envelope] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        wait = max(timeout, 0.0)
        while True:
            message: dict[str, Any] | None = self._pubsub.get_message(timeout=wait)
            if message is not None and message["type"] in _MESSAGES:
                try:
                    received.append(self._decode(message["data"]))
                except Exception as exc:
                    # Anyone can PUBLISH on a channel: one foreign message must not end the subscription.
                    log.warning("skipped an undecodable broadcast on %s: %s", message["channel"], exc)
                wait = 0.0  # take whatever else is already here, without waiting
                continue
            if message is None and (received or time.monotonic() >= deadline):
                return received
            wait = max(deadline - time.monotonic(), 0.0) if not received else 0.0

    def close(self) -> None:
        self._pubsub.close()
