"""Remote control, the worker side: listen on the mailbox channel, run commands, reply.

The commands are in :mod:`celeriac._worker.commands`; plugins add more through
``celeriac_add_control_commands``. A transport without fan-out leaves this step idle.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import ClassVar

from attrs import frozen

from celeriac._client.control import MAILBOX
from celeriac._client.control import REPLIES
from celeriac._client.control import Control
from celeriac._contract.bootsteps import StepContext
from celeriac._contract.protocols import Broadcaster
from celeriac._contract.protocols import DirectReplies
from celeriac._model.config import Config
from celeriac._model.errors import CeleriacError
from celeriac._model.records import Envelope
from celeriac._worker.commands import KERNEL_COMMANDS
from celeriac._worker.commands import Command
from celeriac._worker.commands import Mailbox
from celeriac._worker.keys import CONSUMER
from celeriac._worker.keys import EVENTS
from celeriac._worker.keys import POOL
from celeriac._worker.keys import REVOKED
from celeriac._worker.keys import TRANSPORT

log = logging.getLogger("celeriac.worker")


@frozen
class ControlStep:
    name: ClassVar[str] = "kernel.control"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"kernel.connection", "kernel.state", "kernel.consumer", "kernel.pool", "kernel.events"}
    )

    def enabled(self, config: Config) -> bool:
        return True

    @contextlib.contextmanager
    def run(self, ctx: StepContext) -> Iterator[None]:
        transport = ctx.require(TRANSPORT)
        if not isinstance(transport, Broadcaster):
            yield
            return
        mailbox = Mailbox(
            app=ctx.app,
            config=ctx.config,
            hostname=ctx.hostname,
            revoked=ctx.require(REVOKED),
            statedb=Path(ctx.config.worker.statedb) if ctx.config.worker.statedb else None,
            consumer=ctx.require(CONSUMER),
            pool=ctx.require(POOL),
            events=ctx.require(EVENTS),
            shutdown=ctx.shutdown,
            started_at=time.time(),
        )
        commands = {**KERNEL_COMMANDS, **{c.name: c.handler for c in ctx.app.plugins.control_commands()}}
        subscription = transport.subscribe(MAILBOX)
        stopping = threading.Event()
        control = Control(ctx.app)
        origin = secrets.token_hex(8)

        def listen() -> None:
            while not stopping.is_set():
                try:
                    for envelope in subscription.get(0.5):
                        handle(control, transport, mailbox, commands, envelope, origin)
                except Exception as exc:  # the broker went away: it comes back, or the consumer says so
                    log.warning(
                        "remote control listener failed (%s: %s); retrying in 1 s", type(exc).__name__, exc
                    )
                    log.debug("remote control listener failure", exc_info=True)
                    stopping.wait(1.0)

        thread = threading.Thread(target=listen, name="celeriac-control", daemon=True)
        thread.start()
        # Joined on the way out: a check still waiting for replies must not outlive the worker
        # (it would use a transport that is being closed, or a lock a later fork inherits).
        name_check = threading.Thread(
            target=warn_if_name_taken,
            args=(control, ctx.hostname, origin, stopping),
            name="celeriac-name",
            daemon=True,
        )
        name_check.start()
        try:
            yield
        finally:
            stopping.set()
            name_check.join(timeout=5)
            thread.join(timeout=5)
            subscription.close()


def warn_if_name_taken(
    control: Control, hostname: str, origin: str, stopping: threading.Event | None = None
) -> None:
    """Warn when another live worker answers to this worker's name.

    Replies are keyed by node name, so ``inspect`` would silently show one of the two. The
    ping carries ``origin``, which this worker's own listener does not answer.
    """
    try:
        replies = control.broadcast(
            "ping",
            {"origin": origin},
            destination=[hostname],
            reply=True,
            timeout=2.0,
            limit=1,
            cancel=stopping,
        )
    except Exception as exc:  # only a warning is at stake: the broker's own errors show elsewhere
        log.debug("could not ask for other workers named %s: %s", hostname, exc)
        return
    if replies:
        log.warning(
            "another worker named %s is already running on this broker: remote control replies "
            "of the two mix up (inspect shows one); give each a name of its own with -n",
            hostname,
        )


def handle(
    control: Control,
    transport: Broadcaster,
    mailbox: Mailbox,
    commands: Mapping[str, Command],
    envelope: Envelope,
    origin: str = "",
) -> None:
    """Run one command addressed to this worker (or to all) and reply when asked to.

    A request whose arguments carry this worker's own ``origin`` is its own name check: ignored.
    """
    try:
        request = control.app.codec.loads(envelope.body, envelope.content_type)
        method = request["method"]
    except (CeleriacError, KeyError, TypeError) as exc:
        log.warning("ignoring a malformed remote control message: %s", exc)
        return
    arguments = request.get("arguments")
    if origin and isinstance(arguments, Mapping) and arguments.get("origin") == origin:
        return
    destination = request.get("destination")
    if destination and mailbox.hostname not in destination:
        return
    command = commands.get(method)
    result: Any
    if command is None:
        result = {"error": f"unknown command {method!r}"}
    else:
        try:
            result = command(mailbox, **(request.get("arguments") or {}))
        except Exception as exc:
            log.exception("remote control command %s failed", method)
            result = {"error": f"{type(exc).__name__}: {exc}"}
    ticket = request.get("ticket")
    if not ticket:
        return
    reply = control.envelope({mailbox.hostname: result}, ticket=ticket)
    route = _reply_route(request.get("reply_to"))
    if route is not None and isinstance(transport, DirectReplies):
        transport.send_reply(*route, reply)  # as kombu's pidbox: Celery's clients read it there
    else:
        transport.broadcast(REPLIES, reply)


def _reply_route(reply_to: Any) -> tuple[str, str] | None:
    """``(exchange, routing_key)`` from a request's ``reply_to``, or None when it names none."""
    if not isinstance(reply_to, Mapping):
        return None
    exchange, routing_key = reply_to.get("exchange"), reply_to.get("routing_key")
    if isinstance(exchange, str) and exchange and isinstance(routing_key, str) and routing_key:
        return exchange, routing_key
    return None
