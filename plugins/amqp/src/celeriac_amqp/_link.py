"""One AMQP connection, owned by one I/O thread; other threads hand it calls.

pika's ``BlockingConnection`` is not thread-safe, and the worker uses its transport from
three threads (fetch, settle, timers). So every channel operation runs on the thread that
owns the connection: a caller queues a function, wakes the thread through
``add_callback_threadsafe`` and waits for the result. Between calls the thread runs
``process_data_events``, which delivers consumed messages, answers heartbeats and notices
a dead connection.

When the connection is lost the thread reconnects with an exponential back-off, bumps
:attr:`Link.generation` and runs ``on_connect`` (which restores consumers). A call that
failed because the connection died is run again on the new connection, so every call must
be safe to repeat: publishes are (at-least-once), acknowledgements check the generation of
their delivery tags and drop stale ones (RabbitMQ redelivers those messages).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import Generic
from typing import TypeVar
from typing import final

from celeriac.plugin import finished_by
from celeriac_amqp._frames import Sent
from celeriac_amqp._frames import framed

if TYPE_CHECKING:
    import pika
    from pika.adapters.blocking_connection import BlockingChannel

    from celeriac.plugin import PendingWrite
    from celeriac_amqp._config import AmqpConfig
    from celeriac_amqp._deliveries import Consumer
    from celeriac_amqp._frames import Content

log = logging.getLogger("celeriac.amqp")
T = TypeVar("T")


class _Call(Generic[T]):
    """A function for the I/O thread; ``done`` is None when nobody waits for it (posted).

    It is run once (again on the next connection if the connection was lost meanwhile), or
    failed with the reason it never will be (the link closed, its thread stopped, a refused
    login), or cancelled by a caller that gave up waiting, so :meth:`wait` always ends."""

    __slots__ = ("cancelled", "deadline", "done", "error", "fn", "result", "timeout")

    def __init__(self, fn: Callable[[Link], T], timeout: float = 0.0, *, waited: bool = True) -> None:
        self.fn = fn
        self.timeout = timeout
        # From the hand-over, not from the wait: a settler waiting for many writes while the
        # connection is down gives up on all of them after one timeout, not one each. A posted
        # call (an ack) has no one waiting, so no deadline: no clock read on that path.
        self.deadline = time.monotonic() + timeout if waited else 0.0
        self.done = threading.Event() if waited else None
        self.result: T | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def finished(self, timeout: float = 0.0) -> bool:
        """Would :meth:`wait` return or raise without blocking (it ran, failed, or its time
        ran out)? Waits up to ``timeout`` for that."""
        assert self.done is not None
        return finished_by(self.done, self.deadline, timeout)

    def wait(self) -> T:
        """The function's result once it ran, or its error; ``TimeoutError`` (and it is
        cancelled, so it never runs) when the I/O thread did not get to it in time."""
        assert self.done is not None
        if not self.done.wait(max(0.0, self.deadline - time.monotonic())):
            self.cancelled = True
            raise TimeoutError(f"RabbitMQ did not answer within {self.timeout:g} s (is it reachable?)")
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class WriteLostError(RuntimeError):
    """A message written in part when its connection was lost: it counts as not written.
    (Not a lost-connection error: a call raising it is not run again on the next one.)"""


class _Done:
    """A write with nothing left to wait for: the socket took it whole (or, for the rpc://
    store, the record is kept in this process)."""

    def finished(self, timeout: float = 0.0) -> bool:
        return True

    def wait(self) -> None:
        return None


DONE = _Done()


@final
class Link:
    """The connection, its publishing channel (in confirm mode) and its consuming channel."""

    def __init__(
        self,
        parameters: pika.ConnectionParameters,
        settings: AmqpConfig,
        on_connect: Callable[[Link], None],
        name: str = "celeriac-amqp",
    ) -> None:
        self._parameters = parameters
        self._settings = settings
        self._on_connect = on_connect
        self._name = name
        self._fresh()
        #: Bumped at every (re)connect; delivery tags of older generations are void.
        self.generation = 0

    def _fresh(self) -> None:
        """The state of one process's link: no connection, thread or queued call yet."""
        self._calls: collections.deque[_Call[Any]] = collections.deque()
        self._running = False  # the I/O thread is running a call it took from _calls
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connection: Any = None  # pika BlockingConnection, only touched by the I/O thread
        self._publisher: BlockingChannel | None = None
        self._unconfirmed: BlockingChannel | None = None
        self._consumer: BlockingChannel | None = None
        self._thread: threading.Thread | None = None
        self._died: BaseException | None = None  # what ended the I/O thread, if not a close

    # --- the caller's side ------------------------------------------------------------

    def call(self, fn: Callable[[Link], T], timeout: float | None = None) -> T:
        """Run ``fn(link)`` on the I/O thread and return its result (or raise its error)."""
        return self.submit(fn, timeout).wait()

    def submit(self, fn: Callable[[Link], T], timeout: float | None = None) -> _Call[T]:
        """Queue ``fn(link)`` for the I/O thread and return at once; the returned call's
        ``wait()`` gives its result (``timeout``, default ``operation_timeout``, counts from
        now)."""
        wait = self._settings.operation_timeout if timeout is None else timeout
        item: _Call[T] = _Call(fn, wait)
        self._queue(item)
        return item

    def post(self, fn: Callable[[Link], object]) -> None:
        """Run ``fn(link)`` on the I/O thread without waiting for it, in order with every
        other call; an error is logged. Posted calls still queued when the link closes run
        before its connection closes. For acknowledgements: nothing waits on their outcome
        (one that fails leaves the message to be delivered again)."""
        self._queue(_Call(fn, waited=False))

    def check(self) -> None:
        """Raise if a call would never run: the link is closed, or its thread stopped."""
        if self._closing.is_set():
            raise RuntimeError("the AMQP transport is closed")
        if self._died is not None:
            raise RuntimeError(f"the RabbitMQ connection's thread stopped: {self._died!r}") from self._died

    def _queue(self, item: _Call[Any]) -> None:
        with self._lock:
            # Under the lock that _fail_pending takes: a call queued as the link closes or
            # its thread stops is either failed with the rest or refused here, never left.
            self.check()
            self._calls.append(item)
            waking = len(self._calls) == 1  # else a wake-up is on its way already
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        if waking:
            self._wake()

    def write_now(self, method: bytes, message: Content) -> PendingWrite | None:
        """Publish one message on the channel without confirms from the calling thread, at
        once, when no call is queued or running before it (so it overtakes none of this
        thread's: a task's final reply never passes its RETRY or progress). Saves the two
        thread switches of a hand-over.

        Returns None, nothing written, when it must go through :meth:`submit` instead; else
        its write: over at once when the socket took all of it, or once the I/O thread has
        sent the rest, which fails should the connection be lost before (the message may
        then be incomplete, so it is not sent again: it counts as not written).
        """
        with self._lock:
            # Only this thread's own calls must not be overtaken, and it queues none while
            # here: with none queued or running now, the write itself needs no lock of ours
            # (other threads' writes, in any order, are serialised by the connection's).
            if self._calls or self._running or self._closing.is_set():
                return None
            connection, channel, generation = self._connection, self._unconfirmed, self.generation
        if connection is None or channel is None or channel.connection is not connection:
            return None  # not connected yet, or reconnecting: the I/O thread's work
        if not channel.is_open:
            return None
        impl = connection._impl
        data, count = framed(channel.channel_number, [(method, message)], impl.body_max)
        sent = impl.send_frames_now(data, count, channel.channel_number)
        if sent is Sent.NOTHING:
            return None
        if sent is Sent.ALL:
            return DONE
        return self.submit(lambda link: link._finish_write(generation))

    def _finish_write(self, generation: int) -> None:
        """The rest of a message written in part from another thread, to the socket (I/O
        thread); raises :class:`WriteLostError` if the connection it began on is gone."""
        if generation != self.generation:
            raise WriteLostError("the connection closed before the rest of the message was written")
        self._connection._impl.send_frames(b"", 0)  # the rest, unless its callback sent it
        self.unconfirmed._flush_output()  # and out of pika's buffer, as basic_publish ends

    def _wake(self) -> None:
        connection = self._connection
        if connection is not None:
            # Closed meanwhile: the loop polls its queue anyway.
            with contextlib.suppress(Exception):
                connection.add_callback_threadsafe(_nothing)

    def forget(self) -> None:
        """In a process forked from this one: drop the parent's connection and I/O thread
        (which did not come along) without closing anything the parent still uses; the next
        call connects anew from this process."""
        self._fresh()

    def close(self) -> None:
        self._closing.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # --- the I/O thread's side --------------------------------------------------------

    @property
    def publisher(self) -> BlockingChannel:
        """The channel for publishes and declarations, in confirm mode; reopened when closed."""
        if self._publisher is None or not self._publisher.is_open:
            self._publisher = self._connection.channel()
            self._publisher.confirm_delivery()
        assert self._publisher is not None
        return self._publisher

    @property
    def unconfirmed(self) -> BlockingChannel:
        """A channel without publisher confirms, for messages sent at most once (replies)."""
        if self._unconfirmed is None or not self._unconfirmed.is_open:
            self._unconfirmed = self._connection.channel()
        assert self._unconfirmed is not None
        return self._unconfirmed

    @property
    def consumer(self) -> BlockingChannel:
        """The channel that consumes with manual acknowledgements (opened on first use).

        Once RabbitMQ has closed it (``consumer_timeout``, an unknown delivery tag) it is not
        replaced here: a fresh channel would carry none of the consumers, and the worker
        would consume nothing without a word. The connection is started over instead,
        which restores them (as ``_serve`` does when it finds the channel closed)."""
        if self._consumer is not None and not self._consumer.is_open:
            raise ConnectionResetError("RabbitMQ closed the consuming channel")
        if self._consumer is None:
            self._consumer = self._connection.channel()
        assert self._consumer is not None
        return self._consumer

    @property
    def connection(self) -> Any:
        return self._connection

    def consume(
        self, channel: BlockingChannel, queue: str, callback: Consumer, *, auto_ack: bool, tag: str
    ) -> None:
        """Consume ``queue`` on ``channel`` under ``tag`` (I/O thread; :func:`consumer_tag`),
        every message handed to ``callback`` as the connection reads it, in the order they
        arrive: read whole by the connection itself (:mod:`celeriac_amqp._deliveries`), or
        when it cannot be (split over reads) assembled by pika and passed on at once too,
        instead of queued for ``process_data_events`` to dispatch later, which would let the
        messages read after it overtake it. A caller that maps tags to queues records the
        tag before this: messages can come before it returns."""
        from pika.adapters.blocking_connection import _ConsumerDeliveryEvt

        impl = self._connection._impl
        impl.consume_directly(channel.channel_number, tag, callback)

        def sink(event: Any) -> None:
            if isinstance(event, _ConsumerDeliveryEvt):
                try:
                    callback(None, event.method, event.properties, event.body)
                except Exception as exc:  # a bug, as for a message read directly
                    impl.consumer_error = exc
                    raise
            else:  # the broker cancelled the consumer: pika's own bookkeeping, as for any
                channel._add_pending_event(event)

        try:
            # pika's blocking channel diverts a consumer's events to a sink as they come
            # (what its consume() generator uses); basic_consume would queue them.
            channel._basic_consume_impl(
                queue=queue, auto_ack=auto_ack, exclusive=False, consumer_tag=tag, alternate_event_sink=sink
            )
        except BaseException:
            impl.stop_consuming_directly(channel.channel_number, tag)
            raise

    def cancel(self, channel: BlockingChannel, tag: str) -> None:
        """Stop the consumer (I/O thread); its messages still on their way are pika's to
        give back (a consumer with manual acks), as for any consumer cancelled."""
        self._connection._impl.stop_consuming_directly(channel.channel_number, tag)
        channel.basic_cancel(tag)

    def write(self, channel: BlockingChannel, method: bytes, message: Content) -> None:
        """Publish one message on ``channel`` (I/O thread): the frames ``basic_publish``
        writes, framed by :mod:`celeriac_amqp._frames` instead of pika's frame objects (a
        worker's replies went through pika's at about a tenth of its time), and handed to
        the socket before this returns, as ``basic_publish`` does."""
        impl = self._connection._impl  # the DecodingConnection under pika's blocking adapter
        impl.send_frames(*framed(channel.channel_number, [(method, message)], impl.body_max))
        channel._flush_output()  # what basic_publish ends with

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # not a lost connection (those reconnect): a bug or a refusal
            # Say it once, let go of the connection (RabbitMQ gives back what it held), and
            # fail every call from now on instead of queueing it for a thread that is gone.
            self._died = exc
            log.exception("the RabbitMQ connection's thread stopped")
            self._drop_connection()
            self._fail_pending(RuntimeError(f"the RabbitMQ connection's thread stopped: {exc!r}"))

    def _loop(self) -> None:
        import pika.exceptions as errors

        backoff = 0.0
        while not self._closing.is_set():
            try:
                self._connect()
                backoff = 0.0
                self._serve()
            except (errors.AMQPConnectionError, errors.ConnectionWrongStateError, OSError) as exc:
                if self._closing.is_set():
                    break
                failed = None if self._connection is None else self._connection._impl.consumer_error
                if failed is not None:  # a consumer's bug broke the connection: not to retry
                    raise failed from exc
                backoff = min(
                    max(backoff * 2, self._settings.retry_backoff_base), self._settings.retry_backoff_max
                )
                log.warning("RabbitMQ connection lost (%r); reconnecting in %.1f s", exc, backoff)
                self._drop_connection()
                if isinstance(exc, errors.ProbableAccessDeniedError | errors.ProbableAuthenticationError):
                    self._fail_pending(exc)  # a configuration error: waiting will not help
                self._closing.wait(backoff)
        self._drop_connection()
        self._fail_pending(RuntimeError("the AMQP transport is closed"))

    def _fail_pending(self, error: BaseException) -> None:
        with self._lock:
            pending, self._calls = list(self._calls), collections.deque()
        for item in pending:
            item.error = error
            if item.done is not None:
                item.done.set()

    def _connect(self) -> None:
        from celeriac_amqp._properties import connect

        self._connection = connect(self._parameters)
        self._publisher = self._consumer = self._unconfirmed = None
        self.generation += 1
        if self.generation > 1:
            log.info("reconnected to RabbitMQ (connection %d)", self.generation)
        self._on_connect(self)

    def _serve(self) -> None:
        while not self._closing.is_set():
            self._run_calls()
            self._connection.process_data_events(time_limit=0.2)
            if self._consumer is not None and not self._consumer.is_open:
                # The broker closed the consuming channel (consumer_timeout, a bad tag): its
                # unacked messages are back in their queues. Start over on a new connection,
                # which also restores the consumers.
                raise ConnectionResetError("RabbitMQ closed the consuming channel")

        self._run_calls()  # closing: what was posted (acknowledgements) goes out first

    def _run_calls(self) -> None:
        while True:
            with self._lock:
                item = self._calls.popleft() if self._calls else None
                self._running = item is not None
            if item is None:
                return
            if item.cancelled:
                continue
            try:
                item.result = item.fn(self)
            except Exception as exc:
                if _connection_lost(exc):
                    with self._lock:
                        self._calls.appendleft(item)  # run it again once reconnected
                        self._running = False
                    raise
                item.error = exc
                if item.done is None:
                    log.warning("a posted RabbitMQ operation failed: %r", exc)
            if item.done is not None:
                item.done.set()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._publisher = self._consumer = self._unconfirmed = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()


def consumer_tag() -> str:
    """A consumer tag of this process's own, unique on any connection."""
    return f"ctag-celeriac.{uuid.uuid4().hex}"


def _nothing() -> None:
    """Wakes the I/O thread out of ``process_data_events``."""


def _connection_lost(exc: BaseException) -> bool:
    import pika.exceptions as errors

    return isinstance(exc, errors.AMQPConnectionError | errors.ConnectionWrongStateError | OSError)
