"""Delivered messages read whole from the front of a connection's frame buffer.

pika reads a delivered message as three (or more) frame objects and assembles them in its
channel: a few dozen Python calls per message on the receiving I/O thread, the largest
share of a client's reply thread taking ``rpc://`` replies. A consumer registered with
:meth:`_Connection.consume_directly <celeriac_amqp._properties._Connection.consume_directly>`
gets a message that is all in the read buffer from :func:`read_delivery` instead, straight
from the bytes. Everything else is left to pika: a message split over reads (pika takes
each frame as it is complete, which keeps large messages linear and counted as traffic for
the heartbeat checker), other consumers, every other method, heartbeats, and frames not
laid out as RabbitMQ writes a message. The consumer gets its messages in the order they
arrived either way: :meth:`Link.consume <celeriac_amqp._link.Link.consume>` has pika hand
on what it assembled at once too.

Publisher confirms (``basic.ack``/``basic.nack``, one small method frame each) are read the
same way for a confirming channel registered with ``confirm_directly``
(:func:`read_confirm`): a client taking one confirm per ``delay()`` spent more of its
publishing thread in pika's frame objects and callback registry than in its own handling.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import pika.spec
from attrs import frozen

from celeriac_amqp import _table

_FRAME = struct.Struct(">BHI")  # frame type, channel, payload size
_CLASS_METHOD = struct.Struct(">HH")
_TAG = struct.Struct(">Q")
_CONTENT = struct.Struct(">HHQ")  # class id, weight, body size
_METHOD_FRAME, _HEADER_FRAME, _BODY_FRAME = 1, 2, 3
_FRAME_END = 0xCE
_BASIC, _DELIVER = 60, 60

#: A direct consumer: called as pika calls a consumer callback, (channel, Basic.Deliver,
#: properties, body), except that the channel is None.
Consumer = Callable[[Any, Any, Any, bytes], None]
#: A direct confirm handler: called with (delivery tag, multiple, ack: False for a nack).
Confirms = Callable[[int, bool, bool], None]
_CONFIRM = struct.Struct(">BHIHHQBB")  # a whole basic.ack/nack frame
_ACK, _NACK = 80, 120


@frozen
class Confirmed:
    """One publisher confirm read from the buffer (a frame of :data:`CONFIRM_SIZE` bytes)."""

    channel: int
    tag: int
    multiple: bool
    ack: bool


CONFIRM_SIZE = _CONFIRM.size


def read_confirm(data: bytes | memoryview, channels: Mapping[int, object]) -> Confirmed | None:
    """The ``basic.ack`` or ``basic.nack`` at the front of ``data`` when it is whole and on one
    of ``channels``; None, for pika, for anything else."""
    if len(data) < CONFIRM_SIZE or data[0] != _METHOD_FRAME:
        return None
    _, channel, size, class_id, method, tag, bits, end = _CONFIRM.unpack_from(data)
    if size != 13 or class_id != _BASIC or method not in (_ACK, _NACK) or end != _FRAME_END:
        return None
    if channel not in channels:
        return None
    return Confirmed(channel, tag, bool(bits & 1), method == _ACK)


@frozen
class Delivered:
    """One message read whole: how many bytes and frames it took, and what it carried."""

    size: int
    frames: int
    channel: int
    method: Any  # pika.spec.Basic.Deliver
    properties: bytes
    body: bytes


def read_delivery(data: bytes | memoryview, consumers: Mapping[tuple[int, str], object]) -> Delivered | None:
    """The message at the front of ``data`` when it is a delivery to one of ``consumers``
    (by channel and consumer tag) and all its frames are there; None, for pika, when any
    frame of it is missing or the front of the buffer is anything else."""
    if len(data) < _FRAME.size + _CLASS_METHOD.size or data[0] != _METHOD_FRAME:
        return None
    _, channel, size = _FRAME.unpack_from(data)
    if _CLASS_METHOD.unpack_from(data, _FRAME.size) != (_BASIC, _DELIVER):
        return None
    end = _FRAME.size + size + 1
    if len(data) < end or data[end - 1] != _FRAME_END:
        return None  # pika waits for the rest of this one frame, or reports it malformed
    try:
        tag, offset = _table.decode_short_string(data, _FRAME.size + _CLASS_METHOD.size)
        if (channel, tag) not in consumers:
            return None
        (delivery_tag,) = _TAG.unpack_from(data, offset)
        redelivered = bool(data[offset + _TAG.size] & 1)
        exchange, offset = _table.decode_short_string(data, offset + _TAG.size + 1)
        routing_key, offset = _table.decode_short_string(data, offset)
    except (struct.error, IndexError, _table.FieldTableError):
        return None
    if offset != end - 1:
        return None
    header = _frame(data, end, _HEADER_FRAME, channel)
    if header is None:
        return None
    start, stop = header
    if stop - 1 - start < _CONTENT.size:
        return None
    class_id, _, body_size = _CONTENT.unpack_from(data, start)
    if class_id != _BASIC:
        return None
    properties = bytes(data[start + _CONTENT.size : stop - 1])
    position, frames, remaining = stop, 2, body_size
    pieces: list[bytes | memoryview] = []
    while remaining > 0:
        body = _frame(data, position, _BODY_FRAME, channel)
        if body is None:
            return None
        start, position = body
        pieces.append(data[start : position - 1])
        remaining -= position - 1 - start
        frames += 1
    if remaining < 0:
        return None
    method = pika.spec.Basic.Deliver(tag, delivery_tag, redelivered, exchange, routing_key)
    return Delivered(position, frames, channel, method, properties, b"".join(pieces))


def _frame(data: bytes | memoryview, at: int, kind: int, channel: int) -> tuple[int, int] | None:
    """Where the payload of the frame at ``at`` starts and where the frame ends, if it is a
    whole frame of ``kind`` on ``channel``; else None."""
    if len(data) < at + _FRAME.size:
        return None
    found, on, size = _FRAME.unpack_from(data, at)
    if found != kind or on != channel:
        return None  # not a message RabbitMQ framed in one piece: pika reads it frame by frame
    end = at + _FRAME.size + size + 1
    if len(data) < end or data[end - 1] != _FRAME_END:
        return None
    return at + _FRAME.size, end
