"""Remote control, the worker side: listen on the mailbox channel, run commands, reply.

Commands are small functions in :data:`COMMANDS`; more (inspect, rate_limit, pool_grow ...)
belong here as they are built. A transport without fan-out leaves this step idle.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import ClassVar

from attrs import frozen

from celeriac.bootsteps import StepContext
from celeriac.config import Config
from celeriac.control import MAILBOX
from celeriac.control import REPLIES
from celeriac.control import Control
from celeriac.errors import CeleriacError
from celeriac.protocols import Broadcaster
from celeriac.worker.keys import REVOKED
from celeriac.worker.keys import TRANSPORT
from celeriac.worker.state import RevokedSet

log = logging.getLogger("celeriac.worker")


@frozen
class Mailbox:
    """What commands may touch."""

    hostname: str
    revoked: RevokedSet
    statedb: Path | None


def _revoke(mailbox: Mailbox, task_id: str | list[str], **_: Any) -> dict[str, Any]:
    ids = [task_id] if isinstance(task_id, str) else list(task_id)
    mailbox.revoked.add(ids)
    if mailbox.statedb is not None:
        mailbox.revoked.save(mailbox.statedb)
    log.info("tasks revoked: %s", ", ".join(ids))
    return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}


def _ping(mailbox: Mailbox, **_: Any) -> dict[str, Any]:
    return {"ok": "pong"}


COMMANDS: dict[str, Callable[..., dict[str, Any]]] = {"revoke": _revoke, "ping": _ping}


@frozen
class ControlStep:
    name: ClassVar[str] = "kernel.control"
    requires: ClassVar[frozenset[str]] = frozenset({"kernel.connection", "kernel.state"})

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        transport = ctx.require(TRANSPORT)
        if not isinstance(transport, Broadcaster):
            yield
            return
        statedb = Path(ctx.config.worker.statedb) if ctx.config.worker.statedb else None
        mailbox = Mailbox(hostname=ctx.hostname, revoked=ctx.require(REVOKED), statedb=statedb)
        subscription = transport.subscribe(MAILBOX)
        stopping = threading.Event()
        control = Control(ctx.app)

        def listen() -> None:
            while not stopping.is_set():
                try:
                    for envelope in subscription.get(0.5):
                        _handle(control, transport, mailbox, envelope)
                except Exception:
                    log.exception("remote control listener failed; retrying")
                    stopping.wait(1.0)

        thread = threading.Thread(target=listen, name="celeriac-control", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stopping.set()
            thread.join(timeout=5)
            subscription.close()


def _handle(control: Control, transport: Broadcaster, mailbox: Mailbox, envelope: Any) -> None:
    try:
        request = control.app.codec.loads(envelope.body, envelope.content_type)
        method = request["method"]
    except (CeleriacError, KeyError, TypeError) as exc:
        log.warning("ignoring a malformed remote control message: %s", exc)
        return
    destination = request.get("destination")
    if destination and mailbox.hostname not in destination:
        return
    command = COMMANDS.get(method)
    if command is None:
        result: dict[str, Any] = {"error": f"unknown command {method!r}"}
    else:
        try:
            result = command(mailbox, **(request.get("arguments") or {}))
        except Exception as exc:
            log.exception("remote control command %s failed", method)
            result = {"error": f"{type(exc).__name__}: {exc}"}
    ticket = request.get("ticket")
    if ticket:
        transport.broadcast(REPLIES, control.envelope({mailbox.hostname: result}, ticket=ticket))
