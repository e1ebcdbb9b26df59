"""Broadcast over Redis pub/sub: every subscriber listening gets every message, at most once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.protocols import Envelope
from celeriac_redis._client import pubsub as make_pubsub

if TYPE_CHECKING:
    import redis
    from redis.client import PubSub

_SUBSCRIBE_TIMEOUT = 10.0


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
        self._client.publish(self._channel_name(channel), self._encode(envelope))

    def subscribe(self, channel: str) -> RedisSubscription:
        """Subscribe and wait for the server's confirmation, so nothing sent after this returns is missed."""
        pubsub = make_pubsub(self._client)
        name = self._channel_name(channel)
        pubsub.subscribe(name)
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        while True:
            message = pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.0))
            if message is not None and message["type"] == "subscribe":
                return RedisSubscription(pubsub, self._decode)
            if time.monotonic() > deadline:
                pubsub.close()
                raise TimeoutError(f"Redis did not confirm the subscription to {name!r}")


@final
class RedisSubscription:
    """Messages of one channel since the subscription; a pub/sub connection of its own."""

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
            if message is not None and message["type"] == "message":
                received.append(self._decode(message["data"]))
                wait = 0.0  # take whatever else is already here, without waiting
                continue
            if message is None and (received or time.monotonic() >= deadline):
                return received
            wait = max(deadline - time.monotonic(), 0.0) if not received else 0.0

    def close(self) -> None:
        self._pubsub.close()
