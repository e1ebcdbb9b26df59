"""The worker's own bootsteps: the graph every worker starts from, which plugin steps join
(and may replace by name)."""

from __future__ import annotations

from collections.abc import Sequence

from celeriac._contract.bootsteps import Bootstep
from celeriac._worker.autoreload import AutoreloadStep
from celeriac._worker.beat import BeatStep
from celeriac._worker.connection import ConnectionStep
from celeriac._worker.connection import ResultStoreStep
from celeriac._worker.consumer_step import ConsumerStep
from celeriac._worker.control import ControlStep
from celeriac._worker.events import EventsStep
from celeriac._worker.heartbeat import HeartbeatStep
from celeriac._worker.pool import PoolStep
from celeriac._worker.state import StateStep
from celeriac._worker.timer import TimerStep


def kernel_steps() -> Sequence[Bootstep]:
    """One of each kernel step, in the order they are listed to the graph."""
    return [
        ConnectionStep(),
        ResultStoreStep(),
        StateStep(),
        TimerStep(),
        EventsStep(),
        PoolStep(),
        ConsumerStep(),
        HeartbeatStep(),
        ControlStep(),
        BeatStep(),
        AutoreloadStep(),
    ]
