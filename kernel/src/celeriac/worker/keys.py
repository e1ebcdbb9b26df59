"""Registry keys the kernel's bootsteps provide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from celeriac.bootsteps import Key

if TYPE_CHECKING:
    from celeriac.protocols import Pool
    from celeriac.protocols import ResultStore
    from celeriac.protocols import Transport
    from celeriac.worker.consumer import Consumer
    from celeriac.worker.events import EventDispatcher
    from celeriac.worker.state import RevokedSet
    from celeriac.worker.timer import Timer

TRANSPORT: Key[Transport] = Key("transport")
RESULT_STORE: Key[ResultStore] = Key("result_store")
POOL: Key[Pool] = Key("pool")
TIMER: Key[Timer] = Key("timer")
EVENTS: Key[EventDispatcher] = Key("events")
CONSUMER: Key[Consumer] = Key("consumer")
REVOKED: Key[RevokedSet] = Key("revoked")
