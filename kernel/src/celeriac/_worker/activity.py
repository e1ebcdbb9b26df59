"""What a consumer has taken and holds, for a test's ``join()`` to tell when all is settled."""

from __future__ import annotations

import threading

from attrs import frozen


@frozen(kw_only=True)
class Activity:
    """A consumer's counters at one instant: messages it holds (reserved, held for an ETA or
    a rate limit, running, or finished and not yet acknowledged), deliveries taken since it
    started, and fetch rounds completed."""

    held: int
    taken: int
    rounds: int


class FetchRounds:
    """Counts the consumer's fetch rounds and the deliveries they took.

    A round ends after its deliveries were received, so a message fetched while someone
    looked is counted in ``taken`` by the end of the round under way; one lock and one
    notification per round, none per message.
    """

    def __init__(self) -> None:
        self._taken = 0
        self._rounds = 0
        self._ended = threading.Condition()

    def ended(self, taken: int) -> None:
        """A round that took ``taken`` deliveries (received by now) is over."""
        with self._ended:
            self._taken += taken
            self._rounds += 1
            self._ended.notify_all()

    def activity(self, held: int) -> Activity:
        with self._ended:
            return Activity(held=held, taken=self._taken, rounds=self._rounds)

    def wait(self, after: int, timeout: float) -> bool:
        """Wait until a round ends after round ``after``; False if ``timeout`` passed first."""
        with self._ended:
            return self._ended.wait_for(lambda: self._rounds > after, timeout)
