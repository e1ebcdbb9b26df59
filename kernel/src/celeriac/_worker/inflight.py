"""The messages a worker holds, from receipt until they are settled: the in-flight table.

Every request gets a token when it is received. Its entry keeps the delivery (until it is
acknowledged, early or late), whether it is acknowledged late, when it started, and whether
it is held back (an ETA or a rate limit) rather than given to the pool. The table is shared
by the fetch thread, the pool's threads (a request starting) and the settler; one condition
guards it and is notified whenever it shrinks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from attrs import define

from celeriac._model.records import Delivery
from celeriac._model.request import TaskRequest


@define
class InFlight:
    """One request the worker holds.

    :param delivery: its delivery, None once acknowledged (early acknowledgement).
    :param acks_late: acknowledged when it finishes (True) or when it starts.
    :param started: when it started (a Unix time), None before.
    :param held: waiting for its ETA or its rate-limit slot, not yet in the pool.
    """

    request: TaskRequest
    delivery: Delivery | None
    acks_late: bool
    started: float | None = None
    held: bool = False


class InFlightTable:
    """The in-flight requests by token, and the condition their threads wait on."""

    def __init__(self) -> None:
        self.space = threading.Condition()
        self._entries: dict[int, InFlight] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: InFlight) -> None:
        with self.space:
            self._entries[entry.request.token] = entry

    def wait_for_room(self, capacity: Callable[[], int], timeout: float, stop: threading.Event) -> int:
        """Wait until fewer than ``capacity()`` are held (or ``stop``); returns the room left."""
        with self.space:
            while len(self._entries) >= capacity() and not stop.is_set():
                self.space.wait(timeout)
            return capacity() - len(self._entries)

    def start(self, token: int) -> Delivery | None:
        """Mark a request started; returns its delivery if it is to be acknowledged now
        (early acknowledgement), which the table then no longer holds."""
        with self.space:
            entry = self._entries.get(token)
            if entry is None:
                return None
            entry.started = time.time()
            if entry.acks_late or entry.delivery is None:
                return None
            delivery, entry.delivery = entry.delivery, None
            return delivery

    def acks_late(self, token: int) -> bool:
        """Whether the request is held and acknowledged only when it finishes."""
        with self.space:
            entry = self._entries.get(token)
            return entry is not None and entry.acks_late and entry.delivery is not None

    def hold(self, token: int) -> None:
        with self.space:
            entry = self._entries.get(token)
            if entry is not None:
                entry.held = True

    def release(self, token: int) -> bool:
        """End a hold; False if the request was given back meanwhile (a shutdown)."""
        with self.space:
            entry = self._entries.get(token)
            if entry is None or not entry.held:
                return False
            entry.held = False
            return True

    def take_held(self) -> set[int]:
        """End every hold and return their tokens (a shutdown gives them back)."""
        with self.space:
            held = {token for token, entry in self._entries.items() if entry.held}
            for token in held:
                self._entries[token].held = False
            return held

    def pop(self, tokens: list[int]) -> list[Delivery | None]:
        """Remove requests (settled or given back); each one's delivery if not yet acknowledged."""
        with self.space:
            popped = [self._entries.pop(token, None) for token in tokens]
            self.space.notify_all()
        return [entry.delivery if entry is not None else None for entry in popped]

    def tokens(self) -> set[int]:
        with self.space:
            return set(self._entries)

    def requests(self) -> tuple[list[tuple[TaskRequest, float]], list[TaskRequest]]:
        """The requests running now (with their start time) and those reserved behind them."""
        with self.space:
            entries = list(self._entries.values())
        running = [(entry.request, entry.started) for entry in entries if entry.started is not None]
        reserved = [entry.request for entry in entries if entry.started is None]
        return running, reserved

    def leased(self) -> list[Delivery]:
        """The deliveries not yet acknowledged, whose leases must be renewed."""
        with self.space:
            return [entry.delivery for entry in self._entries.values() if entry.delivery is not None]

    def wait_empty(self, deadline: float | None, cold: Callable[[], bool]) -> bool:
        """Wait until nothing is held, ``cold()`` turns true or ``deadline`` (monotonic) passes;
        returns False when the deadline passed with requests still held."""
        with self.space:
            while self._entries and not cold():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.space.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True
