"""The broker connection and the result store, opened for the worker's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

from attrs import frozen

from celeriac._contract.bootsteps import StepContext
from celeriac._model.config import Config
from celeriac._worker.keys import RESULT_STORE
from celeriac._worker.keys import TRANSPORT


@frozen
class ConnectionStep:
    name: ClassVar[str] = "kernel.connection"
    requires: ClassVar[frozenset[str]] = frozenset()

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        transport = ctx.app.transport
        ctx.provide(TRANSPORT, transport)
        yield
        # The app owns the connection; its owner closes it after the worker stopped.


@frozen
class ResultStoreStep:
    name: ClassVar[str] = "kernel.result_store"
    requires: ClassVar[frozenset[str]] = frozenset()

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        if ctx.app.result_store_url is not None:
            ctx.provide(RESULT_STORE, ctx.app.result_store)
        yield
