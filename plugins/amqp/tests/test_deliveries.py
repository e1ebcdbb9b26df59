"""Delivered messages read whole from a frame buffer (no server: frames as pika writes them)."""

from __future__ import annotations

import pika.frame
import pika.spec
import pytest

from celeriac_amqp._deliveries import Delivered
from celeriac_amqp._deliveries import Wait
from celeriac_amqp._deliveries import read_delivery
from celeriac_amqp._properties import AmqpProperties

TAG = "ctag-celeriac.1"
MINE = {(1, TAG): object()}


def delivery(body: bytes, *, channel: int = 1, tag: str = TAG, frame_max: int = 131072) -> bytes:
    method = pika.spec.Basic.Deliver(tag, 7, True, "ex", "key")
    properties = AmqpProperties(content_type="application/json", headers={"id": "t1", "limit": 1.5})
    pieces = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(body), properties).marshal(),
    ]
    room = frame_max - 8
    pieces += [pika.frame.Body(channel, body[at : at + room]).marshal() for at in range(0, len(body), room)]
    return b"".join(pieces)


@pytest.mark.parametrize("body", [b"", b"[[], {}, {}]", bytes(range(256)) * 2000])
def test_a_whole_delivery_is_read_with_everything_it_carries(body: bytes) -> None:
    data = delivery(body) + b"\x08\x00\x00\x00\x00\x00\x00\xce"  # a heartbeat after it, left
    found = read_delivery(data, MINE)
    assert isinstance(found, Delivered)
    assert found.size == len(data) - 8
    assert found.frames == 2 + -(-len(body) // (131072 - 8))
    assert (found.method.consumer_tag, found.method.delivery_tag, found.method.redelivered) == (TAG, 7, True)
    assert (found.method.exchange, found.method.routing_key) == ("ex", "key")
    properties = AmqpProperties().decode(found.properties)
    assert properties.content_type == "application/json"
    assert properties.headers == {"id": "t1", "limit": 1.5}  # a double, which pika would truncate
    assert found.body == body


def test_a_delivery_not_all_here_is_waited_for_at_every_cut() -> None:
    data = delivery(b"x" * 300_000, frame_max=4096)  # many body frames
    method_end = len(pika.frame.Method(1, pika.spec.Basic.Deliver(TAG, 7, True, "ex", "key")).marshal())
    for cut in [*range(method_end, method_end + 40), *range(method_end + 40, len(data), 997)]:
        assert read_delivery(data[:cut], MINE) is Wait.REST, cut
    for cut in range(method_end):  # the method frame itself: pika waits for it as for any frame
        assert read_delivery(data[:cut], MINE) is None
    assert isinstance(read_delivery(data, MINE), Delivered)


def test_what_is_not_a_direct_consumers_delivery_is_left_to_pika() -> None:
    assert read_delivery(delivery(b"x", tag="someone-else"), MINE) is None
    assert read_delivery(delivery(b"x", channel=2), MINE) is None
    assert read_delivery(b"\x08\x00\x00\x00\x00\x00\x00\xce" + delivery(b"x"), MINE) is None
    ack = pika.frame.Method(1, pika.spec.Basic.Ack(1, False)).marshal()
    assert read_delivery(ack, MINE) is None


def test_frames_not_as_rabbitmq_writes_a_message_are_left_to_pika() -> None:
    data = bytearray(delivery(b"body"))
    method_end = len(pika.frame.Method(1, pika.spec.Basic.Deliver(TAG, 7, True, "ex", "key")).marshal())
    broken_end = bytearray(data)
    broken_end[method_end - 1] = 0  # no frame-end octet
    assert read_delivery(bytes(broken_end), MINE) is None
    other_channel = bytearray(data)
    other_channel[method_end + 2] = 9  # the content header on another channel
    assert read_delivery(bytes(other_channel), MINE) is None
    heartbeat_between = data[:method_end] + b"\x08\x00\x00\x00\x00\x00\x00\xce" + data[method_end:]
    assert read_delivery(bytes(heartbeat_between), MINE) is None
