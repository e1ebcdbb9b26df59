"""Confirmed publishing without a round trip per message: a window of unconfirmed messages.

``publish()`` hands messages to a connection of their own, owned by one I/O thread that
runs pika's ``SelectConnection``, and returns as soon as they are queued there; RabbitMQ's
publisher confirms are tracked asynchronously. Every message stays in memory until
RabbitMQ confirmed it:

* an **ack** forgets it;
* a **nack** publishes it again, up to ``PUBLISH_ATTEMPTS`` times; then it has *failed*;
* a **return** (mandatory, no queue bound: the queue was deleted) declares the queue again
  and publishes it again;
* a **lost connection or channel** publishes every unconfirmed message again on the next
  one, in order (so a message may reach its queue twice: at-least-once).

A failed message is never dropped silently: the next ``publish()`` raises
:class:`celeriac.PublishError` naming it, so do ``flush()`` and ``close()``, and
``publish_error(task_id)`` tells a result handle. The window is bounded: ``publish()`` waits
while ``confirm_window`` messages are unconfirmed, and raises :class:`TimeoutError` when
RabbitMQ confirms nothing for ``operation_timeout``. At process exit the window is flushed;
what RabbitMQ still has not confirmed then is logged as an error, by task id.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import PublishError
from celeriac.plugin import PublishTimeoutError
from celeriac_amqp._frames import Content
from celeriac_amqp._frames import Sent
from celeriac_amqp._frames import framed
from celeriac_amqp._frames import publish_method
from celeriac_amqp._window import PUBLISH_ATTEMPTS
from celeriac_amqp._window import Failures
from celeriac_amqp._window import Outgoing

if TYPE_CHECKING:
    import pika

    from celeriac_amqp._config import AmqpConfig

log = logging.getLogger("celeriac.amqp")

#: With this many messages written and awaiting confirms, the I/O thread comes back to the
#: queue within _SWEEP seconds (or sooner, with the next confirm) without being woken: callers
#: of a busy publisher queue their messages without a system call each, and the I/O thread
#: writes them in batches. Until then a message with a few others in flight is woken for, and
#: a lone one written by its caller (_write_now).
_RIDE_ALONG = 8
_SWEEP = 0.001


@final
class Publisher:
    """A confirm-mode channel on a connection of its own, with a bounded window.

    :param declare: declares a queue (through the transport's other connection), called
        on this I/O thread when RabbitMQ returned a message because its queue is gone.
    """

    def __init__(
        self,
        parameters: pika.ConnectionParameters,
        settings: AmqpConfig,
        declare: Callable[[str], None],
        name: str = "celeriac-amqp-publish",
        where: str = "RabbitMQ",
    ) -> None:
        self._parameters = parameters
        self._where = where
        self._settings = settings
        self._declare = declare
        self._name = name
        self._window = max(1, settings.confirm_window)
        self._strict = settings.confirms == "strict"
        self._fresh()

    def _fresh(self) -> None:
        """The state of one process's publishing: no connection, thread or message yet."""
        self._cond = threading.Condition()
        self._seq = 0
        self._outbox: collections.deque[Outgoing] = collections.deque()
        self._unconfirmed: dict[int, Outgoing] = {}  # by sequence number, oldest first
        self._tags: dict[int, Outgoing] = {}  # by delivery tag of the current channel
        self._next_tag = 1
        self._failures = Failures()
        self._scheduled = False
        # The I/O thread comes back to the outbox within _SWEEP: callers need not wake it.
        self._sweeping = False
        self._closing = False
        self._loop: Any = None
        self._connection: Any = None
        self._channel: Any = None
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._last_error: BaseException | None = None

    # --- the callers' side ----------------------------------------------------------------

    def publish(
        self, exchange: str, routing_key: str, messages: Sequence[Content], timeout: float | None = None
    ) -> None:
        """Queue messages for publishing; return once they are in the window (``strict``:
        once RabbitMQ confirmed them). Raises :class:`PublishError` for earlier messages that
        failed and were not reported yet.

        :param timeout: when there is no connection to RabbitMQ, how long to wait for one;
            then the messages are taken back (never sent later) and
            :class:`~celeriac.PublishTimeoutError` is raised.
        """
        with self._cond:
            if self._closing:
                raise RuntimeError("the AMQP transport is closed")
            self._failures.raise_due()
            self._start()
            deadline = time.monotonic() + self._settings.operation_timeout
            while self._unconfirmed and len(self._unconfirmed) + len(messages) > self._window:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"RabbitMQ confirmed none of {len(self._unconfirmed)} messages within "
                        f"{self._settings.operation_timeout} s ({self._why()}); this message was not sent"
                    )
                self._cond.wait(remaining)
            method = publish_method(exchange, routing_key)
            mine: list[Outgoing] = []
            for message in messages:
                self._seq += 1
                item = Outgoing(self._seq, exchange, routing_key, method, message)
                self._outbox.append(item)
                self._unconfirmed[item.seq] = item
                mine.append(item)
            last = self._seq
            if timeout is not None and self._channel is None:
                self._await_channel(mine, time.monotonic() + timeout, timeout)
            # Others queued or awaiting confirms while the I/O thread is due back: they ride
            # along with its sweep. Alone, a message may still be written from here.
            ride = self._sweeping and len(self._unconfirmed) > len(mine)
            wake = (
                not self._scheduled and not ride and self._channel is not None and not self._write_now(mine)
            )
            self._scheduled = self._scheduled or wake
        if wake:
            self._loop.add_callback_threadsafe(self._drain)
        if self._strict:
            self.wait(last, self._settings.operation_timeout)

    def _write_now(self, mine: list[Outgoing]) -> bool:
        """Write ``mine`` to the socket from the caller's thread (lock held), when no other
        message is queued, being written or awaiting its confirm, so that none is overtaken
        and delivery tags follow the order of writes. Saves a lone message the I/O thread's
        wake-up and two thread switches on its way to RabbitMQ; False (nothing written)
        leaves them to it.

        (Written also with the one message before still awaiting its confirm, as in a third
        of sequential round trips, round trips were no shorter, and a publishing loop wrote
        more of its messages one system call each: 5% fewer per second, pub-pair.txt.)"""
        channel, connection = self._channel, self._connection
        if len(self._unconfirmed) != len(mine) or connection is None:
            # Others await their confirms, queued, being written by the I/O thread (which
            # tags a batch before it writes it) or written: this one must not pass them, and
            # in a publishing loop the I/O thread's batches cost less than a system call each.
            return False
        if len(self._outbox) != len(mine):
            # The I/O thread took them already (while _await_channel let go of the lock).
            return False
        if channel.connection is not connection or not channel.is_open:
            return False
        data, frames = framed(channel.channel_number, _messages(mine), connection.body_max)
        if connection.send_frames_now(data, frames, channel.channel_number) is Sent.NOTHING:
            return False  # a part sent (Sent.PART) is written: the I/O thread sends the rest
        self._outbox.clear()
        self._tag(mine)
        return True

    def _tag(self, written: list[Outgoing]) -> None:
        """Messages written to the channel, in order, get its next delivery tags (lock held)."""
        for item in written:
            self._tags[self._next_tag] = item
            self._next_tag += 1
            item.written = True

    def _await_channel(self, mine: list[Outgoing], deadline: float, timeout: float) -> None:
        """Wait (lock held) for a channel; at the deadline take ``mine`` back and raise."""
        while self._channel is None and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                written = any(item.written for item in mine)
                for item in mine:
                    self._unconfirmed.pop(item.seq, None)
                    with contextlib.suppress(ValueError):
                        self._outbox.remove(item)
                self._cond.notify_all()
                fate = (
                    "it was written to a connection that broke before RabbitMQ confirmed it, so it "
                    "may have been queued; it is not sent again"
                    if written
                    else "the message was not sent and will not be"
                )
                raise PublishTimeoutError(
                    f"could not publish to the broker {self._where} within publish_timeout "
                    f"({timeout:g} s) ({self._why()}); {fate}"
                )
            self._cond.wait(remaining)

    def wait(self, upto: int | None = None, timeout: float | None = None) -> None:
        """Return once every message up to sequence ``upto`` (default: all so far) is
        confirmed; raise :class:`PublishError` if one of them failed, :class:`TimeoutError`
        after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            upto = self._seq if upto is None else upto
            while self._unconfirmed and next(iter(self._unconfirmed)) <= upto:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    pending = sum(1 for seq in self._unconfirmed if seq <= upto)
                    raise TimeoutError(
                        f"RabbitMQ has not confirmed {pending} messages after {timeout} s ({self._why()}); "
                        "they are kept and sent again when it is back"
                    )
                self._cond.wait(remaining)
            self._failures.raise_due(upto)

    @property
    def sequence(self) -> int:
        """The sequence number of the last message handed to :meth:`publish`."""
        return self._seq

    def publish_error(self, task_id: str) -> PublishError | None:
        with self._cond:
            return self._failures.error(task_id)

    def forget(self) -> None:
        """In a process forked from this one: drop the parent's connection, I/O thread and
        window (the parent confirms its own messages); the next publish connects anew."""
        self._fresh()

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` for outstanding confirms, then close; what is still
        unconfirmed is logged as an error."""
        if self._thread is None:
            return
        try:
            self.wait(timeout=timeout)
        except TimeoutError:
            self._log_unconfirmed()
        except PublishError as exc:
            log.error("%s", exc)
        with self._cond:
            self._closing = True
        atexit.unregister(self._at_exit)
        self._loop.add_callback_threadsafe(self._shut)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _why(self) -> str:
        if self._channel is None:
            error = self._last_error
            return f"not connected: {error!r}" if error is not None else "not connected yet"
        return "connected, RabbitMQ is slow to confirm (a memory or disk alarm blocks publishers)"

    def _start(self) -> None:
        """Start the I/O thread on first use (lock held)."""
        if self._thread is not None:
            return
        from pika.adapters.select_connection import IOLoop

        self._loop = IOLoop()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        with self._cond:
            if not self._unconfirmed:
                return
        try:
            self.wait(timeout=self._settings.operation_timeout)
        except TimeoutError:
            self._log_unconfirmed()
        except PublishError as exc:
            log.error("%s", exc)

    def _log_unconfirmed(self) -> None:
        with self._cond:
            ids = [item.name for item in self._unconfirmed.values()]
        if ids:
            log.error(
                "RabbitMQ did not confirm %d published message(s) (%s); they may be lost: %s",
                len(ids),
                self._why(),
                ", ".join(ids),
            )

    # --- the I/O thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._connect()
        self._loop.start()
        self._loop.close()

    def _connect(self) -> None:
        from celeriac_amqp._properties import DecodingConnection

        if self._closing:
            self._loop.stop()
            return
        self._connection = DecodingConnection(
            self._parameters,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
            custom_ioloop=self._loop,
        )

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        # Its confirms are read straight from the connection's buffer, in order with the
        # returns pika reads (_deliveries.read_confirm).
        channel.connection.confirm_directly(channel.channel_number, self._on_confirmed)
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _frame: self._ready(channel)
        )

    def _ready(self, channel: Any) -> None:
        if self._backoff:
            log.info("publishing to RabbitMQ again; %d message(s) to confirm", len(self._unconfirmed))
        self._backoff = 0.0
        with self._cond:
            self._channel = channel
            self._next_tag = 1
            self._cond.notify_all()  # publishers waiting for a connection
        self._drain()

    def _drain(self) -> None:
        """Write what the callers queued to the channel, tagging each with its delivery tag.

        RabbitMQ numbers messages in the order it reads them; a caller writes at once
        (:meth:`_write_now`) only with no other message unconfirmed, so never between the
        tagging of a batch here and its write.
        """
        with self._cond:
            self._scheduled = False
            channel = self._channel
            if channel is None or not self._outbox:
                return
            batch = list(self._outbox)
            self._outbox.clear()
        connection = self._connection
        data, frames = framed(channel.channel_number, _messages(batch), connection.body_max)
        with self._cond:
            if self._channel is not channel:  # closed meanwhile: its close callback requeued
                self._outbox.extendleft(reversed(batch))
                return
            self._tag(batch)
            sweep = not self._sweeping and len(self._tags) >= _RIDE_ALONG
            self._sweeping = self._sweeping or sweep
        if sweep:  # armed before the write: the flag is never left set without its timer
            self._loop.call_later(_SWEEP, self._sweep)
        connection.send_frames(data, frames)

    def _sweep(self) -> None:
        """Write what callers queued while the I/O thread was due back (see _RIDE_ALONG)."""
        with self._cond:
            self._sweeping = False
        self._drain()

    def _on_confirm(self, frame: Any) -> None:
        """A confirm pika read (on a channel not registered to be read directly, which the
        publisher's always is): as :meth:`_on_confirmed`."""
        import pika.spec

        method = frame.method
        self._on_confirmed(method.delivery_tag, method.multiple, isinstance(method, pika.spec.Basic.Ack))

    def _on_confirmed(self, tag: int, multiple: bool, ack: bool) -> None:
        """RabbitMQ acked (or nacked) message ``tag`` (and, ``multiple``, those before it)."""
        with self._cond:
            again = self._settle(self._confirmed(tag, multiple), ack)
            self._cond.notify_all()
        if not ack:
            log.warning("RabbitMQ nacked message(s); %d will be published again", len(again))
        if not again:
            if self._outbox:
                self._drain()  # queued meanwhile: sooner than the sweep (see _RIDE_ALONG)
            return
        try:
            for queue in {item.routing_key for item in again if item.returned}:
                self._declare(queue)
        finally:
            # Queued again even when a declaration failed: out of the delivery tags, they
            # would be in neither of the lists the next connection publishes again from.
            with self._cond:
                for item in again:
                    item.returned = False
                self._outbox.extendleft(reversed(again))
        self._drain()

    def _confirmed(self, tag: int, multiple: bool) -> list[Outgoing]:
        """The messages one ack or nack is about (lock held)."""
        if not multiple:
            one = self._tags.pop(tag, None)
            return [one] if one is not None else []
        done = []
        while self._tags:
            first = next(iter(self._tags))
            if first > tag:
                break
            done.append(self._tags.pop(first))
        return done

    def _settle(self, done: list[Outgoing], ack: bool) -> list[Outgoing]:
        """Forget the acked, fail the too-often nacked; returns what goes out again (lock held)."""
        again = []
        for item in done:
            if item.returned:
                again.append(item)  # its queue is declared again first
            elif ack:
                del self._unconfirmed[item.seq]
            else:
                item.attempts += 1
                if item.attempts < PUBLISH_ATTEMPTS:
                    again.append(item)
                else:  # given up on: the next caller and its result handle hear of it
                    del self._unconfirmed[item.seq]
                    self._failures.add(item)
        return again

    def _on_return(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        """Mandatory and unroutable: the queue is gone. Returns come before the message's
        confirm and in publishing order, so the first unmarked message to that place is it."""
        log.warning(
            "RabbitMQ returned a message for %r (%s); declaring it again",
            method.routing_key,
            method.reply_text,
        )
        with self._cond:
            for item in self._tags.values():
                if not item.returned and (item.exchange, item.routing_key) == (
                    method.exchange,
                    method.routing_key,
                ):
                    item.returned = True
                    break

    def _requeue(self) -> None:
        """The channel is gone (lock held): what it did not confirm goes out again, in order."""
        self._channel = None
        waiting = sorted([*self._tags.values(), *self._outbox], key=lambda item: item.seq)
        self._tags.clear()
        for item in waiting:
            item.returned = False
        self._outbox = collections.deque(waiting)
        self._cond.notify_all()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        # Its number may be opened again, for another channel.
        channel.connection.stop_confirming_directly(channel.channel_number)
        with self._cond:
            if self._channel is not channel and self._channel is not None:
                return
            self._requeue()
            closing = self._closing
        if closing or self._connection is None or not self._connection.is_open:
            return
        log.warning("RabbitMQ closed the publishing channel (%r); opening another", reason)
        self._last_error = reason
        self._retry(self._reopen_channel)

    def _reopen_channel(self) -> None:
        """After the back-off: a channel on the connection, unless that is gone meanwhile (its
        close callback reconnects, and a fresh connection opens its own channel)."""
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, connection: Any, error: BaseException) -> None:
        self._on_closed(connection, error)

    def _on_closed(self, connection: Any, reason: BaseException) -> None:
        with self._cond:
            self._requeue()
            closing = self._closing
        self._connection = None
        if closing:
            self._loop.stop()
            return
        self._last_error = reason
        log.warning("RabbitMQ publishing connection lost (%r); reconnecting", reason)
        self._retry(self._connect)

    def _retry(self, action: Callable[[], None]) -> None:
        settings = self._settings
        self._backoff = min(max(self._backoff * 2, settings.retry_backoff_base), settings.retry_backoff_max)
        self._loop.call_later(self._backoff, action)

    def _shut(self) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()
        elif connection is None or connection.is_closed:
            self._loop.stop()


def _messages(items: list[Outgoing]) -> Iterator[tuple[bytes, Content]]:
    return ((item.method, item.content) for item in items)
