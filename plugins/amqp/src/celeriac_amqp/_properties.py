"""Message properties whose header table goes through our codec (``_table``), both ways.

Sending: :class:`AmqpProperties` is a ``pika.spec.BasicProperties`` whose ``encode`` writes
the header table with :func:`_table.encode_table`; pika calls ``encode`` when it frames a
publish. Receiving: pika decodes a content-header frame into its own ``BasicProperties``
(``pika.frame.decode_frame``), losing doubles. :class:`_Connection`, the select connection
under our ``BlockingConnection``, reads content-header frames itself into
:class:`AmqpProperties` and leaves every other frame to pika. Nothing in pika is modified:
these are a subclass and a connection class handed to ``BlockingConnection``.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING
from typing import Any

import pika
import pika.frame
import pika.spec
from pika.adapters.select_connection import SelectConnection
from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport as _Plaintext

from celeriac_amqp import _table
from celeriac_amqp._deliveries import CONFIRM_SIZE
from celeriac_amqp._deliveries import Confirms
from celeriac_amqp._deliveries import Consumer
from celeriac_amqp._deliveries import Delivered
from celeriac_amqp._deliveries import read_confirm
from celeriac_amqp._deliveries import read_delivery
from celeriac_amqp._frames import Sent

if TYPE_CHECKING:
    from collections.abc import Callable

_HEADER = struct.Struct(">BHL")  # frame type, channel, size
_CONTENT = struct.Struct(">HHQ")  # class id, weight, body size
_ENDINGS = (pika.spec.Channel.Close, pika.spec.Channel.CloseOk)
_FLAGS = struct.Struct(">H").unpack_from
_TIMESTAMP = struct.Struct(">Q").unpack_from
# Basic properties in flag order after headers/delivery mode/priority, with their flag bits:
_SHORT_STRINGS = (
    (1 << 10, "correlation_id"),
    (1 << 9, "reply_to"),
    (1 << 8, "expiration"),
    (1 << 7, "message_id"),
)
_TRAILING_STRINGS = ((1 << 5, "type"), (1 << 4, "user_id"), (1 << 3, "app_id"), (1 << 2, "cluster_id"))


class AmqpProperties(pika.spec.BasicProperties):  # type: ignore[misc]  # pika is untyped here
    """Basic properties with floats, tuples and RabbitMQ's field types in the header table."""

    def encode(self) -> list[bytes]:
        pieces: list[bytes] = []
        flags = 0
        for flag, name in ((1 << 15, "content_type"), (1 << 14, "content_encoding")):
            value = getattr(self, name)
            if value is not None:
                flags |= flag
                _table.encode_short_string(pieces, _text(value), name)
        if self.headers is not None:
            flags |= 1 << 13
            pieces.append(_table.encode_table(self.headers))
        for flag, name in ((1 << 12, "delivery_mode"), (1 << 11, "priority")):
            value = getattr(self, name)
            if value is not None:
                flags |= flag
                pieces.append(struct.pack("B", value))
        for bit, name in _SHORT_STRINGS:
            value = getattr(self, name)
            if value is not None:
                flags |= bit
                _table.encode_short_string(pieces, _text(value), name)
        if self.timestamp is not None:
            flags |= 1 << 6
            pieces.append(struct.pack(">Q", self.timestamp))
        for bit, name in _TRAILING_STRINGS:
            value = getattr(self, name)
            if value is not None:
                flags |= bit
                _table.encode_short_string(pieces, _text(value), name)
        return [struct.pack(">H", flags), *pieces]

    def decode(self, encoded: bytes, offset: int = 0) -> AmqpProperties:
        # Basic has 14 properties: one flag word, its continuation bit is never set. Spelled
        # out property by property: every consumed message's header goes through here.
        (flags,) = _FLAGS(encoded, offset)
        offset += 2
        string = _table.decode_short_string
        self.content_type = self.content_encoding = self.headers = None
        if flags & 0x8000:
            self.content_type, offset = string(encoded, offset)
        if flags & 0x4000:
            self.content_encoding, offset = string(encoded, offset)
        if flags & 0x2000:
            self.headers, offset = _table.decode_table(encoded, offset)
        self.delivery_mode = self.priority = None
        if flags & 0x1000:
            self.delivery_mode = encoded[offset]
            offset += 1
        if flags & 0x0800:
            self.priority = encoded[offset]
            offset += 1
        offset = self._strings(_SHORT_STRINGS, flags, encoded, offset)
        self.timestamp = None
        if flags & 0x0040:
            (self.timestamp,) = _TIMESTAMP(encoded, offset)
            offset += 8
        self._strings(_TRAILING_STRINGS, flags, encoded, offset)
        return self

    def _strings(self, fields: tuple[tuple[int, str], ...], flags: int, encoded: bytes, offset: int) -> int:
        """Set the short-string properties ``fields`` (flag bit, name) from ``offset`` on;
        returns the offset after them."""
        for bit, name in fields:
            if flags & bit:
                value, offset = _table.decode_short_string(encoded, offset)
                setattr(self, name, value)
            else:
                setattr(self, name, None)
        return offset


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _Connection(SelectConnection):  # type: ignore[misc]  # pika is untyped here
    """pika's select connection, except that content headers are decoded by :class:`AmqpProperties`
    and that frames may be written from other threads too (:meth:`send_frames_now`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Held while frames go to the socket or pika's buffer, by whichever thread.
        self._writing = threading.Lock()
        #: The part of frames written from another thread that the socket did not take.
        self._tail = b""
        #: Channels whose ``Channel.Close`` or ``CloseOk`` is written or about to be: a frame
        #: written after it on that channel is dropped (or, after ``CloseOk``, closes the
        #: connection), while pika still reads the channel as open.
        self._ending: set[int] = set()
        #: Consumers (by channel and tag) whose messages are read whole from the frame
        #: buffer (:mod:`celeriac_amqp._deliveries`); the I/O thread's alone.
        self._direct: dict[tuple[int, str], Consumer] = {}
        #: Confirming channels whose acks and nacks are read directly (the I/O thread's alone).
        self._confirms: dict[int, Confirms] = {}
        #: What a direct consumer raised: a bug, not a lost connection.
        self.consumer_error: Exception | None = None
        super().__init__(*args, **kwargs)

    def consume_directly(self, channel: int, tag: str, callback: Consumer) -> None:
        """Hand consumer ``tag``'s messages on ``channel`` to ``callback`` as they are read,
        in order, past pika's frame objects and its blocking adapter's event queue (I/O
        thread; before ``basic_consume``, so that none of them takes pika's way)."""
        self._direct[(channel, tag)] = callback

    def stop_consuming_directly(self, channel: int, tag: str) -> None:
        """Leave the consumer's messages to pika again (before ``basic_cancel``, which
        gives back those still arriving for it)."""
        self._direct.pop((channel, tag), None)

    def confirm_directly(self, channel: int, handler: Confirms) -> None:
        """Hand the publisher confirms of ``channel`` to ``handler`` as they are read, in order
        with every other frame (a ``basic.return`` before its message's ack), past pika's
        frame objects and callback registry (I/O thread; until the channel closes)."""
        self._confirms[channel] = handler

    def stop_confirming_directly(self, channel: int) -> None:
        self._confirms.pop(channel, None)

    def _on_data_available(self, data_in: bytes) -> None:
        if not self._direct and not self._confirms:
            super()._on_data_available(data_in)
            return
        self._frame_buffer += data_in
        taken = 0  # bytes read directly, trimmed off once rather than after every message
        try:
            while len(self._frame_buffer) > taken:
                front = memoryview(self._frame_buffer)[taken:]
                confirmed = read_confirm(front, self._confirms) if self._confirms else None
                if confirmed is not None:
                    taken += CONFIRM_SIZE
                    self.frames_received += 1
                    self._confirms[confirmed.channel](confirmed.tag, confirmed.multiple, confirmed.ack)
                    continue
                found = read_delivery(front, self._direct) if self._direct else None
                if found is not None and self._hand_over(found):
                    taken += found.size
                    continue
                if taken:
                    self._trim_frame_buffer(taken)
                    taken = 0
                consumed, value = self._read_frame()
                if not value:
                    return
                self._trim_frame_buffer(consumed)
                self._process_frame(value)
        finally:
            if taken:
                self._trim_frame_buffer(taken)

    def _hand_over(self, found: Delivered) -> bool:
        """Give a message read whole to its consumer; False, nothing done, when its
        properties do not decode: pika's way then reports it as before (a broken message,
        not a consumer's bug)."""
        try:
            properties = AmqpProperties().decode(found.properties)
        except (ValueError, struct.error, IndexError):  # FieldTableError is a ValueError
            return False
        self.frames_received += found.frames
        try:
            self._direct[(found.channel, found.method.consumer_tag)](
                None, found.method, properties, found.body
            )
        except Exception as exc:
            # pika drops the connection for it (RabbitMQ keeps the message); the thread
            # owning it raises this instead of reconnecting to the same.
            self.consumer_error = exc
            raise
        return True

    def _send_method(self, channel_number: int, method: Any, content: Any = None) -> None:
        if isinstance(method, _ENDINGS):
            with self._writing:  # no write from another thread between this and the close
                self._ending.add(channel_number)
        elif isinstance(method, pika.spec.Channel.Open):
            with self._writing:  # the number is used again, by a new channel
                self._ending.discard(channel_number)
        super()._send_method(channel_number, method, content)

    def _read_frame(self) -> tuple[int, Any]:
        data = self._frame_buffer
        if len(data) >= _HEADER.size and data[0] == pika.spec.FRAME_HEADER:
            _, channel, size = _HEADER.unpack_from(data)
            end = _HEADER.size + size + 1
            if len(data) >= end and data[end - 1] == pika.spec.FRAME_END:
                class_id, _, body_size = _CONTENT.unpack_from(data, _HEADER.size)
                if class_id == pika.spec.Basic.INDEX:
                    properties = AmqpProperties().decode(bytes(data[_HEADER.size + _CONTENT.size : end - 1]))
                    return end, pika.frame.Header(channel, body_size, properties)
        # Anything else (and incomplete or malformed frames) as pika reads it.
        read: Callable[[], tuple[int, Any]] = super()._read_frame
        return read()

    def _output_marshaled_frames(self, marshaled_frames: list[bytes]) -> None:
        # pika hands the transport each frame of a message as a buffer of its own, and the
        # transport sends each with a system call of its own: one buffer per message instead.
        self.send_frames(b"".join(marshaled_frames), len(marshaled_frames))

    def send_frames(self, data: bytes, count: int) -> None:
        """Write frames encoded elsewhere (:mod:`celeriac_amqp._frames`), as pika writes its own
        (I/O thread).

        pika's transport only buffers a write and sends it once the loop finds the socket
        writable: for every message, a writability watch set and cleared and a poll between.
        When nothing is buffered before them the frames go to the socket here, on the I/O
        thread as always; what the socket does not take (or all of it, on TLS or an error,
        which pika's own write then finds) goes through pika's buffer.
        """
        with self._writing:
            tail, self._tail = self._tail, b""
            if tail:  # what a write from another thread left: it goes first
                data = tail + data
            transport = self._transport
            if transport is None:
                # The connection is gone (a tail's callback can come after that): what these
                # frames carried is published again, or its write reported lost, by its caller.
                return
            self.bytes_sent += len(data) - len(tail)
            self.frames_sent += count
            sock = self._idle_socket(transport)
            if sock is not None:
                try:
                    sent = sock.send(data)
                except OSError:
                    sent = 0
                if sent == len(data):
                    return
                data = data[sent:]
            if data:
                self._adapter_emit_data(data)

    def send_frames_now(self, data: bytes, count: int, channel: int) -> Sent:
        """Write frames from a thread other than the I/O thread, without waking it: a reply or
        a publish nothing is queued before saves two thread switches on its way.

        Only when no other thread is writing, the socket is plaintext and open, nothing waits
        in pika's buffer, and ``channel`` is not being closed; else nothing is written
        (:attr:`Sent.NOTHING`) and they must go through the I/O thread. A part the socket did
        not take (:attr:`Sent.PART`) is sent by the I/O thread before anything written after
        it. A writer is not waited for: it may hold the lock while it waits for the
        interpreter's, and threads queueing behind it (a worker's pool threads replying)
        would convoy.
        """
        if not self._writing.acquire(blocking=False):
            return Sent.NOTHING
        try:
            transport = self._transport  # read once: pika drops it when the connection is lost
            if self._tail or transport is None or channel in self._ending:
                return Sent.NOTHING
            sock = self._idle_socket(transport)
            if sock is None:
                return Sent.NOTHING
            try:
                sent = sock.send(data)
            except OSError:  # full (nothing taken) or broken: the I/O thread's way finds out
                return Sent.NOTHING
            self.bytes_sent += len(data)
            self.frames_sent += count
            if sent == len(data):
                return Sent.ALL
            self._tail = data[sent:]
            self._adapter_add_callback_threadsafe(self._send_tail)
            return Sent.PART
        finally:
            self._writing.release()

    def _send_tail(self) -> None:
        self.send_frames(b"", 0)

    @staticmethod
    def _idle_socket(transport: Any) -> Any:
        """The transport's socket if frames may go to it directly now: plaintext, open, and
        nothing in pika's buffer to go before them; else None."""
        if (
            isinstance(transport, _Plaintext)
            and transport._state == transport._STATE_ACTIVE  # pika's own write checks this too
            and transport.get_write_buffer_size() == 0
        ):
            return transport._sock
        return None

    @property
    def body_max(self) -> int:
        """The most body bytes one frame carries on this connection (negotiated frame size)."""
        return int(self.params.frame_max) - 8


#: The select connection whose content headers go through our codec, for callers of their own.
DecodingConnection = _Connection


def connect(parameters: pika.ConnectionParameters) -> pika.BlockingConnection:
    """A blocking connection whose messages carry :class:`AmqpProperties`."""
    return pika.BlockingConnection(parameters, _impl_class=_Connection)
