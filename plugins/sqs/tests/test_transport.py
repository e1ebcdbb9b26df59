"""The SQS transport against moto's server: the Transport contract, delays, FIFO, batches."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import Transport
from celeriac_sqs import SqsError

from .conftest import MakeApp


def envelope(n: int = 0, **headers: Any) -> Envelope:
    return Envelope(body=json.dumps([[n], {}, {}]).encode(), content_type="application/json", headers=headers)


def fetch_all(transport: Transport, queue: str, count: int, timeout: float = 10.0) -> list[Delivery]:
    found: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += transport.fetch([queue], count - len(found), 1.0)
    return found


def numbers(deliveries: list[Delivery]) -> list[int]:
    return [json.loads(d.envelope.body)[0][0] for d in deliveries]


def test_publish_fetch_ack_in_batches_of_more_than_ten(make_app: MakeApp) -> None:
    transport = make_app().transport
    assert isinstance(transport, Transport)
    transport.publish("work", [envelope(n) for n in range(25)])
    assert transport.queue_length("work") == 25
    deliveries = fetch_all(transport, "work", 25)
    assert sorted(numbers(deliveries)) == list(range(25))
    assert all(d.delivery_count == 1 and d.queue == "work" for d in deliveries)
    transport.ack(deliveries)
    assert transport.fetch(["work"], 10, 0) == []
    assert transport.queue_length("work") == 0


def test_body_is_kombus_base64_json_envelope(make_app: MakeApp, sqs: Any, prefix: str) -> None:
    transport = make_app().transport
    transport.publish("work", [envelope(7, task="proj.add", id="abc")])
    url = sqs.get_queue_url(QueueName=f"{prefix}work")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    data = json.loads(base64.b64decode(message["Body"]))
    assert data["headers"]["task"] == "proj.add"
    assert data["properties"]["body_encoding"] == "base64"
    assert data["properties"]["delivery_info"] == {"exchange": "", "routing_key": "work"}
    assert json.loads(base64.b64decode(data["body"])) == [[7], {}, {}]


def test_queue_names_follow_kombu(make_app: MakeApp, sqs: Any, prefix: str) -> None:
    transport = make_app().transport
    transport.declare_queue("media.video")
    assert sqs.get_queue_url(QueueName=f"{prefix}media-video")["QueueUrl"].endswith("media-video")


def test_reject_requeue_counts_deliveries_and_reject_drops(make_app: MakeApp) -> None:
    transport = make_app().transport
    transport.publish("work", [envelope(1)])
    [first] = fetch_all(transport, "work", 1)
    transport.reject([first], requeue=True)
    [second] = fetch_all(transport, "work", 1)
    assert second.delivery_count == 2 and second.redelivered
    transport.reject([second], requeue=False)
    assert transport.queue_length("work") == 0


def test_unacked_message_comes_back_after_the_visibility_timeout_unless_extended(make_app: MakeApp) -> None:
    transport = make_app(visibility_timeout=4.0).transport
    transport.publish("work", [envelope(1), envelope(2)])
    held = fetch_all(transport, "work", 2)
    kept = [d for d in held if numbers([d]) == [1]]
    started = time.monotonic()
    while time.monotonic() - started < 6.0:  # renewed more often than a worker does (a third)
        transport.extend(kept)
        time.sleep(0.5)
    back = fetch_all(transport, "work", 1)
    assert numbers(back) == [2] and back[0].delivery_count == 2
    transport.ack([*kept, *back])


def test_delay_is_sqs_delay_and_nothing_comes_early(make_app: MakeApp) -> None:
    transport = make_app().transport
    sent = time.time()
    transport.publish("work", [envelope(1)], delay=2.0)
    [delivery] = fetch_all(transport, "work", 1)
    assert time.time() - sent >= 2.0
    transport.ack([delivery])


def test_due_time_beyond_sqs_delay_goes_in_hops(make_app: MakeApp, sqs: Any, prefix: str) -> None:
    """What a delay over 15 minutes leaves on the queue, with the due time seconds away."""
    transport = make_app().transport
    transport.declare_queue("work")
    url = sqs.get_queue_url(QueueName=f"{prefix}work")["QueueUrl"]
    due = time.time() + 3
    body = base64.b64encode(json.dumps({"body": "", "properties": {}}).encode()).decode()
    sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={"celeriac.due": {"DataType": "Number", "StringValue": str(due)}},
    )
    assert transport.fetch(["work"], 1, 1.0) == []  # received, not due: sent again delayed
    assert transport.queue_length("work") == 1  # the copy only (delayed), the original deleted
    [delivery] = fetch_all(transport, "work", 1)
    assert time.time() >= due - 1.0  # the worker waits out the last second itself
    assert delivery.delivery_count == 1
    transport.ack([delivery])


def test_fifo_queue_keeps_group_order_holds_delayed_messages(make_app: MakeApp) -> None:
    transport = make_app().transport
    transport.publish("jobs.fifo", [envelope(n, MessageGroupId="a") for n in range(12)])
    deliveries = []
    while len(deliveries) < 12:
        batch = transport.fetch(["jobs.fifo"], 12, 1.0)
        assert batch, "FIFO messages went missing"
        deliveries += batch
        transport.ack(batch)
    assert numbers(deliveries) == list(range(12))
    sent = time.time()
    transport.publish("jobs.fifo", [envelope(99)], delay=2.5)
    [late] = fetch_all(transport, "jobs.fifo", 1)
    assert time.time() - sent >= 1.5  # held invisible until at most 1 s before due
    assert late.delivery_count == 1  # the hold is not counted as a delivery
    transport.ack([late])


def test_broken_bodies_are_dead_lettered_with_the_reason(make_app: MakeApp, sqs: Any, prefix: str) -> None:
    transport = make_app().transport
    transport.declare_queue("work")
    url = sqs.get_queue_url(QueueName=f"{prefix}work")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not base64 or json!")
    sqs.send_message(QueueUrl=url, MessageBody='{"no": "body"}')
    assert transport.fetch(["work"], 10, 1.0) == []
    letters = transport.dead_letters("work")
    assert len(letters) == 2
    assert all("not a kombu" in letter.reason for letter in letters), letters
    assert transport.queue_length("work") == 0


def test_dead_letter_list_and_requeue(make_app: MakeApp, sqs: Any, prefix: str) -> None:
    transport = make_app().transport
    transport.publish("work", [envelope(5, id="t5")])
    [delivery] = fetch_all(transport, "work", 1)
    transport.dead_letter(delivery, "delivered 11 times without being acknowledged")
    assert transport.queue_length("work") == 0
    [letter] = transport.dead_letters()
    assert letter.queue == "work" and letter.reason.startswith("delivered 11 times")
    assert letter.envelope.headers["id"] == "t5"
    assert sqs.get_queue_url(QueueName=f"{prefix}work-dead-letters")
    assert transport.requeue_dead_letter(letter.id)
    assert not transport.requeue_dead_letter(letter.id)
    [again] = fetch_all(transport, "work", 1)
    assert numbers([again]) == [5]
    assert transport.dead_letters("work") == []
    transport.ack([again])


def test_redrive_policy_queue_is_used_and_its_moves_are_listed(
    make_app: MakeApp, sqs: Any, prefix: str
) -> None:
    dlq = sqs.create_queue(QueueName=f"{prefix}mine-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    sqs.create_queue(QueueName=f"{prefix}work", Attributes={"RedrivePolicy": policy})
    transport = make_app().transport
    transport.publish("work", [envelope(1), envelope(2)])
    deliveries = fetch_all(transport, "work", 2)
    first, second = sorted(deliveries, key=lambda d: numbers([d]))
    transport.dead_letter(first, "refused on purpose")
    transport.reject([second], requeue=True)  # received once: SQS moves it on the next receive
    assert transport.fetch(["work"], 10, 1.0) == []
    letters = {numbers([letter])[0]: letter for letter in transport.dead_letters("work")}
    assert letters[1].reason == "refused on purpose"
    assert "redrive policy" in letters[2].reason
    assert letters[1].id.startswith(f"{prefix}mine-dlq/")


def test_purge_counts_waiting_and_delayed(make_app: MakeApp) -> None:
    transport = make_app().transport
    transport.publish("work", [envelope(n) for n in range(3)])
    transport.publish("work", [envelope(9)], delay=60)
    assert transport.purge("work") == 4
    assert transport.fetch(["work"], 10, 0) == []


def test_several_queues_are_all_served(make_app: MakeApp) -> None:
    transport = make_app().transport
    transport.publish("a", [envelope(1)])
    transport.publish("b", [envelope(2)])
    found = []
    for _ in range(4):
        found += transport.fetch(["a", "b"], 10, 1.0)
    assert sorted(numbers(found)) == [1, 2]
    transport.ack(found)


def test_missing_queue_is_an_error_when_creation_is_off(make_app: MakeApp) -> None:
    transport = make_app(sqs={"create_queues": False}).transport
    with pytest.raises(SqsError, match=r"does not exist at http://127\.0\.0\.1:.*create_queues is false"):
        transport.publish("nowhere", [envelope()])
