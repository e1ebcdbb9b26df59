"""Registry keys the kernel's bootsteps provide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from celeriac._contract.bootsteps import Key

if TYPE_CHECKING:
    from celeriac._contract.protocols import Pool
    from celeriac._contract.protocols import ResultStore
    from celeriac._contract.protocols import Transport
    from celeriac._worker.consumer import Consumer
    from celeriac._worker.events import EventDispatcher
    from celeriac._worker.state import RevokedSet
    from celeriac._worker.timer import Timer

TRANSPORT: Key[Transport] = Key("transport")
RESULT_STORE: Key[ResultStore] = Key("result_store")
POOL: Key[Pool] = Key("pool")
TIMER: Key[Timer] = Key("timer")
EVENTS: Key[EventDispatcher] = Key("events")
CONSUMER: Key[Consumer] = Key("consumer")
REVOKED: Key[RevokedSet] = Key("revoked")
