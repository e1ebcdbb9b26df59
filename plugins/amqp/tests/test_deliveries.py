"""Delivered messages read whole from a frame buffer (no server: frames as pika writes them)."""

from __future__ import annotations

import pika.frame
import pika.spec
import pytest

from celeriac_amqp._deliveries import Confirmed
from celeriac_amqp._deliveries import Delivered
from celeriac_amqp._deliveries import read_confirm
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


def test_a_delivery_not_all_here_is_left_to_pika_at_every_cut() -> None:
    # pika then reads it frame by frame, each frame as soon as it is whole.
    data = delivery(b"x" * 300_000, frame_max=4096)  # many body frames
    for cut in [*range(0, 80), *range(80, len(data), 997)]:
        assert read_delivery(data[:cut], MINE) is None, cut
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


def test_a_large_message_arriving_counts_as_traffic_before_its_last_frame() -> None:
    """pika's heartbeat checker calls a connection dead when ``bytes_received`` has not moved
    for one check interval (heartbeat + 5 s), and RabbitMQ sends no heartbeat while it is
    busy sending. pika trims (and counts) each frame as it is complete; a direct consumer's
    message must not hold every byte uncounted until its last frame is there, or a message
    that takes longer than that to arrive (a slow link, or the buffer copied whole at every
    4 KiB read of a large one) has its connection dropped, again at every redelivery."""
    from celeriac_amqp._properties import _Connection

    connection = _Connection(pika.ConnectionParameters(host="127.0.0.1", port=1))  # never run
    try:
        connection.consume_directly(1, TAG, lambda *args: None)
        data = delivery(b"x" * 200_000, frame_max=4096)  # 49 body frames
        for at in range(0, len(data) - 100, 4096):  # all but the end of the last body frame
            connection._on_data_available(data[at : min(at + 4096, len(data) - 100)])
        assert connection.bytes_received >= len(data) - 2 * 4096
    finally:
        connection.ioloop.close()


def test_a_publisher_confirm_is_read_as_pika_writes_it() -> None:
    """An ack or a nack whole at the front of the buffer, on a confirming channel, is read;
    one cut short, on another channel, or any other method is pika's."""
    ack = pika.frame.Method(3, pika.spec.Basic.Ack(delivery_tag=2**33, multiple=True)).marshal()
    nack = pika.frame.Method(3, pika.spec.Basic.Nack(delivery_tag=7, multiple=False, requeue=True)).marshal()
    assert read_confirm(ack + nack, {3: None}) == Confirmed(3, 2**33, True, True)
    assert read_confirm(nack, {3: None}) == Confirmed(3, 7, False, False)
    assert read_confirm(ack[:-1], {3: None}) is None
    assert read_confirm(ack, {4: None}) is None
    qos = pika.frame.Method(3, pika.spec.Basic.QosOk()).marshal()
    assert read_confirm(qos + ack, {3: None}) is None
    heartbeat = pika.frame.Heartbeat().marshal()
    assert read_confirm(heartbeat + ack, {3: None}) is None
