"""Sampling queue lengths through the transport, on a schedule rather than per scrape.

A scrape-time query would let every scraper (two Prometheus replicas, a curious curl)
add broker load; sampling every ``queue_interval`` seconds bounds it to one
``queue_length`` call per watched queue per interval, whoever scrapes. The call is cheap on
Redis (one XLEN or LLEN) and RabbitMQ (a passive declare), and a COUNT over the queue's
rows on SQLite, which grows with the backlog: hence a period, and only the listed queues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import final

from celeriac.plugin import Transport
from celeriac_prometheus._metrics import TaskMetrics

log = logging.getLogger("celeriac.prometheus")


@final
class QueueSampler:
    """Reads each queue's length into ``metrics``; a failure drops that queue's series."""

    def __init__(self, transport: Transport, queues: Sequence[str], metrics: TaskMetrics) -> None:
        self.transport = transport
        self.queues = tuple(dict.fromkeys(queues))
        self.metrics = metrics

    def sample(self) -> None:
        for queue in self.queues:
            try:
                length: int | None = self.transport.queue_length(queue)
            except Exception as exc:
                log.warning("could not read the length of queue %r: %s", queue, exc)
                length = None
            self.metrics.set_queue_length(queue, length)
