"""Broadcast over SNS, as kombu's SQS transport fans out: a topic per channel, a queue per subscriber.

A channel ``celery.pidbox`` is the SNS topic ``celery-pidbox`` (kombu's name for the same
exchange). Each subscription is an SQS queue of its own, subscribed to the topic with raw
message delivery, deleted on close. Delivery is at-most-once, as the Broadcaster protocol
says: what is published before the subscription exists is not seen.

A subscriber killed without closing leaves its queue and SNS subscription behind. Every
subscription queue carries a tag with the time it stops being kept; a live subscription
renews it while it reads, and each new subscription deletes the queues (and subscriptions)
of the same prefix whose time has passed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac.plugin import to_kombu
from celeriac_sqs import _body as body
from celeriac_sqs._client import make_client
from celeriac_sqs._queues import sqs_name

if TYPE_CHECKING:
    from celeriac_sqs._transport import SqsTransport

log = logging.getLogger("celeriac.sqs")
#: Subscription queues are named ``<queue_prefix>celeriac-fanout-<id>``.
SUBSCRIBER = "celeriac-fanout-"
KEEP_TAG = "celeriac-keep-until"
#: A subscription queue not read for this long is taken for abandoned and deleted.
KEEP = 300.0


@final
class SnsFanout:
    """SNS topics for a transport's broadcasts, created on first use (their ARNs cached)."""

    def __init__(self, transport: SqsTransport) -> None:
        self.transport = transport
        self.sns = make_client("sns", transport.endpoint, transport.settings)
        self._topics: dict[str, str] = {}
        self._lock = threading.Lock()
        self._swept = False

    def topic(self, channel: str) -> str:
        found = self._topics.get(channel)
        if found is None:
            name = sqs_name(self.transport.settings.queue_prefix, channel)
            response = self.transport.call(
                f"creating the SNS topic {name!r}", self.sns.create_topic, Name=name
            )
            found = self._topics[channel] = str(response["TopicArn"])
        return found

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        """SNS Publish of kombu's JSON envelope (not base64: kombu publishes it plain)."""
        message = json.dumps(to_kombu(envelope, exchange=channel, routing_key=""))
        self.transport.call(
            f"broadcasting on {channel!r}", self.sns.publish, TopicArn=self.topic(channel), Message=message
        )

    def subscribe(self, channel: str) -> SqsSubscription:
        with self._lock:
            if not self._swept:
                self._swept = True
                self._sweep()
        topic = self.topic(channel)
        transport = self.transport
        name = f"{transport.settings.queue_prefix}{SUBSCRIBER}{uuid.uuid4().hex}"
        url = transport.call(
            f"creating the subscription queue {name!r}",
            transport.client.create_queue,
            QueueName=name,
            Attributes={"MessageRetentionPeriod": "60"},
            tags={KEEP_TAG: str(int(time.time() + KEEP))},
        )["QueueUrl"]
        arn = transport.queues.arn(url)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        transport.call(
            f"allowing {topic} to send to {name!r}",
            transport.client.set_queue_attributes,
            QueueUrl=url,
            Attributes={"Policy": json.dumps(policy)},
        )
        subscription = transport.call(
            f"subscribing {name!r} to {topic}",
            self.sns.subscribe,
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return SqsSubscription(self, url, str(subscription))

    def _sweep(self) -> None:
        """Delete subscription queues whose keep-until time passed, and SNS subscriptions to them."""
        transport = self.transport
        now = time.time()
        gone: set[str] = set()
        try:
            for _, url in transport.queues.listed(""):
                if SUBSCRIBER not in url.rsplit("/", 1)[-1]:
                    continue
                tags = transport.call("reading queue tags", transport.client.list_queue_tags, QueueUrl=url)
                keep = float(tags.get("Tags", {}).get(KEEP_TAG, now + KEEP))
                if keep < now:
                    gone.add(transport.queues.arn(url))
                    transport.call("deleting an abandoned queue", transport.client.delete_queue, QueueUrl=url)
            if gone:
                paginator = self.sns.get_paginator("list_subscriptions")
                for page in paginator.paginate():
                    for sub in page.get("Subscriptions", []):
                        if sub.get("Endpoint") in gone:
                            self.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        except Exception as exc:  # a sweep that fails must not stop remote control
            log.warning("could not delete abandoned broadcast subscriptions: %s", exc)
        if gone:
            log.info("deleted %d abandoned broadcast subscription queue(s)", len(gone))


@final
class SqsSubscription:
    """One subscriber's queue: :meth:`get` long-polls it and deletes what it read."""

    def __init__(self, fanout: SnsFanout, url: str, subscription: str) -> None:
        self._fanout = fanout
        self._url = url
        self._subscription = subscription
        self._renewed = time.monotonic()

    def get(self, timeout: float) -> list[Envelope]:
        transport = self._fanout.transport
        client = transport.client
        if time.monotonic() - self._renewed > KEEP / 3:
            self._renewed = time.monotonic()
            transport.call(
                "renewing a subscription",
                client.tag_queue,
                QueueUrl=self._url,
                Tags={KEEP_TAG: str(int(time.time() + KEEP))},
            )
        response = transport.call(
            "reading broadcasts",
            client.receive_message,
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            # At least a second of long polling: a listener asking every half second must not
            # turn into a loop of empty short polls.
            WaitTimeSeconds=max(0, min(20, math.ceil(timeout))) if timeout > 0 else 0,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if not messages:
            return []
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        transport.call(
            "deleting read broadcasts", client.delete_message_batch, QueueUrl=self._url, Entries=entries
        )
        envelopes = []
        for message in messages:
            try:
                envelopes.append(body.decode(str(message.get("Body", ""))))
            except MessageError as exc:
                log.warning("dropping a broadcast that is no kombu message: %s", exc)
        return envelopes

    def close(self) -> None:
        transport = self._fanout.transport
        try:
            transport.call("unsubscribing", self._fanout.sns.unsubscribe, SubscriptionArn=self._subscription)
        finally:
            transport.call("deleting a subscription queue", transport.client.delete_queue, QueueUrl=self._url)
