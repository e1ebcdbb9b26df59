"""The kernel's own bootsteps, contributed through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Sequence

from celeriac._contract.bootsteps import Bootstep
from celeriac._contract.hookspecs import hookimpl
from celeriac._model.config import Config
from celeriac._model.config import ConfigSection
from celeriac._model.schedules import BeatConfig
from celeriac._worker.beat import BeatStep
from celeriac._worker.connection import ConnectionStep
from celeriac._worker.connection import ResultStoreStep
from celeriac._worker.consumer import ConsumerStep
from celeriac._worker.control import ControlStep
from celeriac._worker.events import EventsStep
from celeriac._worker.heartbeat import HeartbeatStep
from celeriac._worker.pool import PoolStep
from celeriac._worker.state import StateStep
from celeriac._worker.timer import TimerStep


@hookimpl(tryfirst=True)
def celeriac_add_bootsteps(config: Config) -> Sequence[Bootstep]:
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
    ]


@hookimpl
def celeriac_add_config_sections() -> Sequence[ConfigSection]:
    return [ConfigSection(name="beat", cls=BeatConfig, description="the periodic-task scheduler")]
