"""The kernel's own bootsteps, contributed through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Sequence

from celeriac._model.config import Config
from celeriac._model.config import ConfigSection
from celeriac._model.schedules import BeatConfig
from celeriac.bootsteps import Bootstep
from celeriac.hookspecs import hookimpl
from celeriac.worker.beat import BeatStep
from celeriac.worker.connection import ConnectionStep
from celeriac.worker.connection import ResultStoreStep
from celeriac.worker.consumer import ConsumerStep
from celeriac.worker.control import ControlStep
from celeriac.worker.events import EventsStep
from celeriac.worker.heartbeat import HeartbeatStep
from celeriac.worker.pool import PoolStep
from celeriac.worker.state import StateStep
from celeriac.worker.timer import TimerStep


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
