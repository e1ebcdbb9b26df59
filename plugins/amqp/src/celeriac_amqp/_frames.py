"""``basic.publish`` frames written directly, for the confirm window's hot path.

pika's ``Channel.basic_publish`` builds frame objects and hands the socket three buffers per
message; profiling a ``delay()`` loop put about two thirds of the publishing thread's time
there and in pika's property objects. Here a message's content header (properties with
the header table, by :mod:`celeriac_amqp._table`) and body are encoded once, on the
caller's thread, and the I/O thread frames a whole batch into one buffer
(:meth:`DecodingConnection.send_frames`). pika still owns the connection, the channel and
its confirm mode: these frames are what ``basic_publish`` would write.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from celeriac.plugin import Envelope
from celeriac_amqp import _table

_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY = 1, 2, 3
_FRAME_END = b"\xce"
_FRAME = struct.Struct(">BHI").pack
_BASIC = 60
_PUBLISH = 40
_CONTENT = struct.Struct(">HHQH").pack  # class, weight, body size, property flags
_BYTE = struct.Struct("B").pack

_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS = 1 << 15, 1 << 14, 1 << 13
_DELIVERY_MODE, _PRIORITY, _CORRELATION_ID, _REPLY_TO = 1 << 12, 1 << 11, 1 << 10, 1 << 9


class Sent(enum.Enum):
    """How much of a write from another thread went to the socket."""

    NOTHING = "nothing"  #: nothing: the I/O thread must write it
    ALL = "all"  #: all of it
    PART = "part"  #: part; the I/O thread sends the rest, before anything written later


@frozen
class Content:
    """A message ready to frame: its content-header payload and its body."""

    header: bytes
    body: bytes
    task_id: str | None


def content(envelope: Envelope, priority: int, *, persistent: bool = True) -> Content:
    """Encode the properties as :func:`celeriac_amqp._wire.properties` maps them."""
    props = envelope.properties
    flags = _CONTENT_TYPE | _CONTENT_ENCODING | _HEADERS | _DELIVERY_MODE
    pieces = [_types(envelope.content_type, envelope.content_encoding)]
    headers: Mapping[str, Any] = envelope.headers
    pieces.append(_table.encode_table(headers))
    pieces.append(b"\x02" if persistent else b"\x01")
    chosen = priority or props.get("priority")
    if chosen:
        flags |= _PRIORITY
        pieces.append(_BYTE(min(max(int(chosen), 0), 255)))
    for flag, name in ((_CORRELATION_ID, "correlation_id"), (_REPLY_TO, "reply_to")):
        value = props.get(name)
        if value:
            flags |= flag
            _table.encode_short_string(pieces, str(value), name)
    body = envelope.body
    task_id = headers.get("id")
    return Content(
        header=_CONTENT(_BASIC, 0, len(body), flags) + b"".join(pieces),
        body=body,
        task_id=task_id if isinstance(task_id, str) else None,
    )


@functools.lru_cache(maxsize=64)
def _types(content_type: str, content_encoding: str) -> bytes:
    """The content type and encoding properties, the same for most messages."""
    pieces: list[bytes] = []
    _table.encode_short_string(pieces, content_type, "content_type")
    _table.encode_short_string(pieces, content_encoding, "content_encoding")
    return b"".join(pieces)


@functools.lru_cache(maxsize=1024)
def publish_method(exchange: str, routing_key: str, *, mandatory: bool = True) -> bytes:
    """The ``basic.publish`` method payload (not immediate) for one destination."""
    pieces: list[bytes] = [struct.pack(">HHH", _BASIC, _PUBLISH, 0)]
    _table.encode_short_string(pieces, exchange, "exchange")
    _table.encode_short_string(pieces, routing_key, "routing key")
    pieces.append(b"\x01" if mandatory else b"\x00")
    return b"".join(pieces)


def framed(channel: int, messages: Iterable[tuple[bytes, Content]], body_max: int) -> tuple[bytes, int]:
    """Messages (each its method payload and content) framed on ``channel`` as one buffer,
    and how many frames that is."""
    out: list[bytes] = []
    count = 0
    for method, message in messages:
        count += frame(out, channel, method, message, body_max)
    return b"".join(out), count


def frame(out: list[bytes], channel: int, method: bytes, message: Content, body_max: int) -> int:
    """Append one message's frames to ``out``; returns how many frames that is."""
    out += (_FRAME(_FRAME_METHOD, channel, len(method)), method, _FRAME_END)
    out += (_FRAME(_FRAME_HEADER, channel, len(message.header)), message.header, _FRAME_END)
    body = message.body
    if len(body) <= body_max:
        if body:
            out += (_FRAME(_FRAME_BODY, channel, len(body)), body, _FRAME_END)
            return 3
        return 2
    count = 2
    for start in range(0, len(body), body_max):
        chunk = body[start : start + body_max]
        out += (_FRAME(_FRAME_BODY, channel, len(chunk)), chunk, _FRAME_END)
        count += 1
    return count
