"""The SQS transport: long polling, lease renewal, long delays, FIFO queues, batched calls."""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from attrs import frozen

from celeriac.plugin import Config
from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac_sqs import _body as body
from celeriac_sqs._client import Endpoint
from celeriac_sqs._client import SqsError
from celeriac_sqs._client import call
from celeriac_sqs._client import endpoint_of
from celeriac_sqs._client import make_client
from celeriac_sqs._config import SqsConfig
from celeriac_sqs._dead import DeadLetters
from celeriac_sqs._queues import Queues
from celeriac_sqs._queues import is_fifo

if TYPE_CHECKING:
    from celeriac_sqs._fanout import SqsSubscription

log = logging.getLogger("celeriac.sqs")
#: SQS's limits: messages per batch call, per-message delay, visibility timeout.
BATCH = 10
MAX_DELAY = 900
MAX_VISIBILITY = 43200
#: A batch's bodies stay under SQS's request size (256 KiB everywhere SQS runs).
BATCH_BYTES = 250_000
#: A message due at most this far ahead is delivered; the worker waits out the rest
#: (its own ETA tolerance is 1 s), so a due time rounded up by SQS never bounces.
DUE_TOLERANCE = 1.0
SYSTEM_ATTRIBUTES = [
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SentTimestamp",
    "MessageGroupId",
]


@frozen
class SqsTag:
    """A delivery's handle: the queue URL, SQS's receipt handle and the message as received."""

    url: str
    receipt: str
    message_id: str
    raw: str
    group: str | None = None


class SqsTransport:
    """Queues on Amazon SQS, one SQS queue per celeriac queue, named as kombu names them.

    SQS has no priorities: ``priority`` is kept in the message for Celery and otherwise
    ignored. Delays up to 15 minutes are SQS's own (``DelaySeconds``); longer ones travel
    in 15-minute hops, and on FIFO queues (which take no per-message delay) the message is
    held invisible until due.
    """

    def __init__(self, url: str, config: Config) -> None:
        settings = config.section("sqs", SqsConfig)
        self._settings = settings
        self.endpoint: Endpoint = endpoint_of(url, settings)
        self.client = make_client("sqs", self.endpoint, settings)
        self.visibility = max(0, min(MAX_VISIBILITY, math.ceil(config.visibility_timeout)))
        self.queues = Queues(self.client, self.endpoint, settings, self.visibility)
        self._dead = DeadLetters(self)
        self._turn = itertools.count()

    @property
    def settings(self) -> SqsConfig:
        return self._settings

    def call(self, what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        return call(self.endpoint, what, method, **kwargs)

    # --- producing ------------------------------------------------------------------------

    def declare_queue(self, queue: str) -> None:
        self.queues.url(queue)

    def publish(
        self, queue: str, envelopes: Sequence[Envelope], *, priority: int = 0, delay: float = 0.0
    ) -> None:
        """SendMessageBatch, ten at a time; a delay over 15 minutes (or any on FIFO) goes as a due time."""
        if not envelopes:
            return
        url = self.queues.url(queue)
        fifo = is_fifo(url)
        entries = []
        for index, envelope in enumerate(envelopes):
            entry = self._entry(envelope, queue, fifo, time.time() + delay if delay > 0 else None)
            if delay > 0 and not fifo:
                entry["DelaySeconds"] = min(MAX_DELAY, math.ceil(delay))
            entry["Id"] = str(index)
            entries.append(entry)
        self.send_entries(url, queue, entries)

    def _entry(self, envelope: Envelope, queue: str, fifo: bool, due: float | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "MessageBody": body.encode(envelope, queue, base64_body=self._settings.base64_bodies)
        }
        if due is not None and (fifo or due - time.time() > MAX_DELAY):
            entry["MessageAttributes"] = {body.DUE: body.number(due)}
        if fifo:
            entry["MessageGroupId"] = _option(envelope, "MessageGroupId") or self._settings.message_group_id
            entry["MessageDeduplicationId"] = _option(envelope, "MessageDeduplicationId") or uuid.uuid4().hex
        return entry

    def send_entries(self, url: str, queue: str, entries: list[dict[str, Any]]) -> None:
        """Send prepared entries in batches; entries SQS refuses are sent again, twice at most."""
        for batch in _batches(entries):
            pending = batch
            for attempt in range(3):
                response = self.call(
                    f"sending to queue {queue!r}",
                    self.client.send_message_batch,
                    QueueUrl=url,
                    Entries=pending,
                )
                failed = {f["Id"]: f for f in response.get("Failed", [])}
                if not failed:
                    break
                senders_fault = [f for f in failed.values() if f.get("SenderFault")]
                if senders_fault or attempt == 2:
                    first = next(iter(failed.values()))
                    raise SqsError(
                        f"{self.endpoint.label} refused {len(failed)} message(s) for queue {queue!r}: "
                        f"{first.get('Code')}: {first.get('Message')}"
                    )
                pending = [e for e in pending if e["Id"] in failed]

    # --- consuming ------------------------------------------------------------------------

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Receive up to ``limit`` messages, long polling while nothing has come.

        One queue is long-polled for up to ``timeout`` (whole seconds, 20 at most). With
        several, each is asked in turn without waiting, then one of them, taking turns, is
        long-polled: a message on another queue waits at most that long.
        """
        if limit <= 0 or not queues:
            return []
        wait = max(0, min(self._settings.wait_time_seconds, math.floor(timeout)))
        start = next(self._turn) % len(queues)
        order = [*queues[start:], *queues[:start]]
        deliveries: list[Delivery] = []
        if len(order) > 1:
            for queue in order:
                deliveries += self._receive(queue, limit - len(deliveries), 0)
                if len(deliveries) >= limit:
                    return deliveries
            if deliveries or wait == 0:
                return deliveries
        return self._receive(order[0], limit, wait)

    def _receive(self, queue: str, limit: int, wait: int) -> list[Delivery]:
        """One long poll, then more receives without waiting while full batches come back."""
        url = self.queues.url(queue)
        deliveries: list[Delivery] = []
        while len(deliveries) < limit:
            asked = min(BATCH, limit - len(deliveries))
            response = self.call(
                f"receiving from queue {queue!r}",
                self.client.receive_message,
                QueueUrl=url,
                MaxNumberOfMessages=asked,
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.visibility,
                MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                MessageAttributeNames=body.ATTRIBUTES,
            )
            messages = response.get("Messages", [])
            for message in messages:
                delivery = self._delivery(queue, url, message)
                if delivery is not None:
                    deliveries.append(delivery)
            if len(messages) < asked:
                break
            wait = 0
        return deliveries

    def _delivery(self, queue: str, url: str, message: dict[str, Any]) -> Delivery | None:
        raw = str(message.get("Body", ""))
        attributes = message.get("Attributes", {})
        count = int(attributes.get("ApproximateReceiveCount", 1))
        tag = SqsTag(
            url, message["ReceiptHandle"], message["MessageId"], raw, attributes.get("MessageGroupId")
        )
        due = body.read_float(message, body.DUE)
        if due is not None:
            remaining = due - time.time()
            if remaining > DUE_TOLERANCE:
                self._not_yet(queue, tag, message, due, remaining)
                return None
            if is_fifo(url):
                count = max(1, count - _holds(message, due))
        try:
            envelope = body.decode(raw)
        except MessageError as exc:
            reason = str(exc)
            log.error("dead-lettering a message of %r: %s", queue, reason)
            bad = Envelope(body=raw.encode(), content_type="application/octet-stream")
            self._dead.bury(Delivery(envelope=bad, queue=queue, tag=tag, delivery_count=count), reason)
            return None
        return Delivery(envelope=envelope, queue=queue, tag=tag, delivery_count=count)

    def _not_yet(
        self, queue: str, tag: SqsTag, message: dict[str, Any], due: float, remaining: float
    ) -> None:
        """A message received before its due time: sent again for another hop, or held (FIFO)."""
        if is_fifo(tag.url):
            hold = min(MAX_VISIBILITY, math.ceil(remaining))
            self.call(
                f"holding a delayed message of {queue!r}",
                self.client.change_message_visibility,
                QueueUrl=tag.url,
                ReceiptHandle=tag.receipt,
                VisibilityTimeout=hold,
            )
            return
        entry: dict[str, Any] = {
            "Id": "0",
            "MessageBody": tag.raw,
            "DelaySeconds": min(MAX_DELAY, math.ceil(remaining)),
            "MessageAttributes": {body.DUE: body.number(due)},
        }
        # The copy first: a crash in between leaves two copies, never none.
        self.send_entries(tag.url, queue, [entry])
        self._delete(tag.url, [tag], f"re-delaying a message of {queue!r}")

    # --- settling ---------------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """DeleteMessageBatch per queue; an expired receipt is logged (the message comes back)."""
        for url, tags in _by_queue(deliveries).items():
            self._delete(url, tags, "acknowledging")

    def _delete(self, url: str, tags: Sequence[SqsTag], what: str) -> None:
        for start in range(0, len(tags), BATCH):
            chunk = tags[start : start + BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": t.receipt} for i, t in enumerate(chunk)]
            response = self.call(
                f"{what} on {url}", self.client.delete_message_batch, QueueUrl=url, Entries=entries
            )
            _log_failures(response, chunk, f"{what} on {url}")

    def reject(self, deliveries: Sequence[Delivery], *, requeue: bool) -> None:
        """Visible again at once (visibility 0), or deleted."""
        if not requeue:
            self.ack(deliveries)
            return
        for url, tags in _by_queue(deliveries).items():
            self._change_visibility(url, tags, 0, "giving messages back")

    def extend(self, deliveries: Sequence[Delivery]) -> None:
        """ChangeMessageVisibilityBatch to a whole visibility timeout from now (the lease renewal)."""
        for url, tags in _by_queue(deliveries).items():
            self._change_visibility(url, tags, self.visibility, "renewing leases")

    def _change_visibility(self, url: str, tags: Sequence[SqsTag], seconds: int, what: str) -> None:
        for start in range(0, len(tags), BATCH):
            chunk = tags[start : start + BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": t.receipt, "VisibilityTimeout": seconds}
                for i, t in enumerate(chunk)
            ]
            response = self.call(
                f"{what} on {url}", self.client.change_message_visibility_batch, QueueUrl=url, Entries=entries
            )
            _log_failures(response, chunk, f"{what} on {url}")

    # --- dead letters -----------------------------------------------------------------------

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Send the message as received to the dead-letter queue with the reason, then delete it."""
        self._dead.bury(delivery, reason)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return self._dead.listing(queue, limit)

    def requeue_dead_letter(self, dead_letter_id: str) -> bool:
        return self._dead.requeue(dead_letter_id)

    # --- inspection -------------------------------------------------------------------------

    def purge(self, queue: str) -> int:
        """PurgeQueue (delayed messages too), counting first; SQS may take up to 60 s to finish."""
        from botocore.exceptions import ClientError

        url = self.queues.url(queue)
        waiting = self.queue_length(queue)
        try:
            self.call(f"purging queue {queue!r}", self.client.purge_queue, QueueUrl=url)
        except ClientError as exc:
            raise SqsError(f"could not purge queue {queue!r} at {self.endpoint.label}: {exc}") from exc
        return waiting

    def queue_length(self, queue: str) -> int:
        """SQS's approximate count of visible and delayed messages."""
        found = self.queues.attributes(
            self.queues.url(queue), "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"
        )
        return int(found.get("ApproximateNumberOfMessages", 0)) + int(
            found.get("ApproximateNumberOfMessagesDelayed", 0)
        )

    def close(self) -> None:
        self.client.close()


def _option(envelope: Envelope, name: str) -> str | None:
    """A FIFO option from the message: properties (kombu's place) or headers (``apply_async(headers=)``)."""
    value = envelope.properties.get(name) or envelope.headers.get(name)
    return str(value) if value else None


def _holds(message: dict[str, Any], due: float) -> int:
    """How many receives of a FIFO message were holds before its due time (see :meth:`_not_yet`)."""
    first = message.get("Attributes", {}).get("ApproximateFirstReceiveTimestamp")
    if first is None:
        return 0
    ahead = due - int(first) / 1000
    return math.ceil(ahead / MAX_VISIBILITY) if ahead > DUE_TOLERANCE else 0


def _batches(entries: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        length = len(entry["MessageBody"])
        if batch and (len(batch) == BATCH or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += length
    if batch:
        yield batch


def _by_queue(deliveries: Sequence[Delivery]) -> dict[str, list[SqsTag]]:
    grouped: dict[str, list[SqsTag]] = defaultdict(list)
    for delivery in deliveries:
        tag = delivery.tag
        if not isinstance(tag, SqsTag):
            raise TypeError(f"{delivery!r} was not fetched from an SqsTransport")
        grouped[tag.url].append(tag)
    return grouped


def _log_failures(response: dict[str, Any], tags: Sequence[SqsTag], what: str) -> None:
    for failure in response.get("Failed", []):
        tag = tags[int(failure["Id"])]
        log.warning(
            "%s: message %s: %s: %s (its lease ran out; SQS delivers it again)",
            what,
            tag.message_id,
            failure.get("Code"),
            failure.get("Message"),
        )


@final
class SqsBroadcastTransport(SqsTransport):
    """:class:`SqsTransport` with broadcast over SNS (``[sqs] broadcast = true``): remote
    control and events. A class of its own, so that without SNS the worker sees no
    ``Broadcaster`` and leaves remote control idle rather than failing on SNS calls."""

    def __init__(self, url: str, config: Config) -> None:
        super().__init__(url, config)
        from celeriac_sqs._fanout import SnsFanout

        self._fanout = SnsFanout(self)

    def broadcast(self, channel: str, envelope: Envelope) -> None:
        self._fanout.broadcast(channel, envelope)

    def subscribe(self, channel: str) -> SqsSubscription:
        return self._fanout.subscribe(channel)

    def close(self) -> None:
        self._fanout.sns.close()
        super().close()
