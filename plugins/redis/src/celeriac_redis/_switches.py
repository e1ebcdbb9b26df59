"""Hearing of a Sentinel failover as it happens, from the ``+switch-master`` channel.

Connections kept for reuse ask the Sentinels for the master at most once a second (see
``Direct._follow_master``). In that second after a failover they could still write to the
demoted master, and what they wrote was lost when it resynced. Every Sentinel publishes
``+switch-master <name> <old ip> <old port> <new ip> <new port>`` when it adopts a new master;
a thread subscribed to it tells its owner the new address within a round trip. The
once-a-second question stays as the backstop for a missed message (a Sentinel restarting,
the subscription being made again).

redis-py's Sentinel support has no listener for this channel, hence this module.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any
from typing import final

log = logging.getLogger("celeriac.redis")

CHANNEL = "+switch-master"
#: Seconds a subscription waits for a message before checking whether it should stop.
_LISTEN = 1.0
#: Seconds before subscribing to the next Sentinel when one could not be reached.
_PAUSE = 1.0


@final
class SwitchWatcher:
    """Listens to one Sentinel at a time (the next one when it fails) for switches of the
    master ``pool`` serves, and passes each new address to ``on_switch``.

    :param pool: redis-py's Sentinel-managed pool (``service_name``, ``sentinel_manager``).
    """

    def __init__(self, pool: Any, on_switch: Callable[[tuple[str, int]], None]) -> None:
        self._service: str = pool.service_name
        self._sentinels: list[Any] = list(pool.sentinel_manager.sentinels)
        self._on_switch = on_switch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start listening, once (later calls return at once)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._listen, name="celeriac-sentinel-switches", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop listening; the thread leaves within a second."""
        self._stop.set()

    def forget(self) -> None:
        """After fork(): the thread is not in this process; the next :meth:`start` makes one."""
        self._thread = None
        self._lock = threading.Lock()

    def _listen(self) -> None:
        turn = 0
        while not self._stop.is_set():
            sentinel = self._sentinels[turn % len(self._sentinels)]
            turn += 1
            pubsub = sentinel.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=_LISTEN)
                    if message is not None:
                        self.handle(message.get("data"))
            except Exception as exc:  # this Sentinel is unreachable: try the next one
                log.debug("listening to Sentinel %s for %s failed (%s)", turn, CHANNEL, exc)
                self._stop.wait(_PAUSE)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def handle(self, data: Any) -> None:
        """One ``+switch-master`` message: pass the new address on when it is this master's."""
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        fields = text.split()
        if len(fields) != 5 or fields[0] != self._service:
            return
        try:
            address = (fields[3], int(fields[4]))
        except ValueError:
            return
        log.warning("Sentinel switched master %r to %s:%d", self._service, *address)
        self._on_switch(address)
