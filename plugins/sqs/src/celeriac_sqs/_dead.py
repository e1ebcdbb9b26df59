"""Dead letters on SQS: a dead-letter queue per queue, the reason in message attributes.

The message goes over as it was received (the same body), so SQS's own redrive back to the
source queue works too. A queue with an SQS redrive policy dead-letters into that policy's
queue, where SQS also puts what it moved after ``maxReceiveCount`` receives (without a reason).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import final

from celeriac.plugin import DeadLetter
from celeriac.plugin import Delivery
from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac_sqs import _body as body
from celeriac_sqs._queues import FIFO
from celeriac_sqs._queues import is_fifo

if TYPE_CHECKING:
    from celeriac_sqs._transport import SqsTransport

log = logging.getLogger("celeriac.sqs")
#: Seconds a listed dead letter stays invisible to others while the listing goes on; every
#: one is made visible again at once when the listing ends.
LIST_HOLD = 30


@final
class DeadLetters:
    """Burying, listing and requeueing dead letters of one transport."""

    def __init__(self, transport: SqsTransport) -> None:
        self._transport = transport

    def bury(self, delivery: Delivery, reason: str) -> None:
        from celeriac_sqs._transport import SqsTag

        tag = delivery.tag
        if not isinstance(tag, SqsTag):
            raise TypeError(f"{delivery!r} was not fetched from an SqsTransport")
        queue = delivery.queue
        name, url = self._transport.queues.dead_letters_of(queue)
        entry: dict[str, Any] = {
            "Id": "0",
            "MessageBody": tag.raw or "-",
            "MessageAttributes": {
                body.REASON: body.text(reason[: body.MAX_REASON]),
                body.QUEUE: body.text(queue),
                body.FAILED_AT: body.number(time.time()),
                body.DELIVERIES: body.number(delivery.delivery_count),
            },
        }
        if is_fifo(name):
            entry["MessageGroupId"] = tag.group or self._transport.settings.message_group_id
            entry["MessageDeduplicationId"] = tag.message_id  # burying twice keeps one
        # The copy first, then the delete: never lost, at worst dead-lettered twice.
        self._transport.send_entries(url, name, [entry])
        self._transport.ack([delivery])

    def _dead_queues(self, queue: str | None) -> list[tuple[str, str]]:
        if queue is not None:
            return [self._transport.queues.dead_letters_of(queue)]
        suffix = self._transport.settings.dead_letter_suffix
        return self._transport.queues.listed(suffix) + self._transport.queues.listed(suffix + FIFO)

    def _peek(self, url: str, limit: int) -> list[dict[str, Any]]:
        """Receive up to ``limit`` distinct messages, hidden for :data:`LIST_HOLD` seconds."""
        client = self._transport.client
        seen: dict[str, dict[str, Any]] = {}
        while len(seen) < limit:
            response = self._transport.call(
                f"reading dead letters of {url}",
                client.receive_message,
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                WaitTimeSeconds=1 if not seen else 0,
                VisibilityTimeout=LIST_HOLD,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"],
                MessageAttributeNames=body.ATTRIBUTES,
            )
            messages = response.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            seen.update((m["MessageId"], m) for m in fresh)
            if not fresh:
                break
        return list(seen.values())

    def _release(self, url: str, messages: list[dict[str, Any]]) -> None:
        client = self._transport.client
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            self._transport.call(
                f"releasing dead letters of {url}",
                client.change_message_visibility_batch,
                QueueUrl=url,
                Entries=entries,
            )

    def listing(self, queue: str | None, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for name, url in self._dead_queues(queue):
            messages = self._peek(url, limit)
            try:
                letters.extend(self._letter(name, m) for m in messages)
            finally:
                self._release(url, messages)
        letters.sort(key=lambda letter: letter.failed_at)
        return letters[:limit]

    def _letter(self, name: str, message: dict[str, Any]) -> DeadLetter:
        raw = str(message.get("Body", ""))
        try:
            envelope = body.decode(raw)
        except MessageError:
            envelope = Envelope(body=raw.encode(), content_type="application/octet-stream")
        reason = body.read(message, body.REASON)
        sent = int(message.get("Attributes", {}).get("SentTimestamp", 0)) / 1000
        if reason is None:
            receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            reason = (
                "moved here by the queue's SQS redrive policy (maxReceiveCount reached); no reason recorded"
            )
            reason += f" ({receives} receives here)"
        return DeadLetter(
            id=f"{name}/{message['MessageId']}",
            queue=body.read(message, body.QUEUE) or self._source_of(name),
            envelope=envelope,
            reason=reason,
            failed_at=body.read_float(message, body.FAILED_AT) or sent,
        )

    def _source_of(self, dead_name: str) -> str:
        """The celeriac queue a dead-letter queue of ours belongs to (its name less the suffix)."""
        settings = self._transport.settings
        name = dead_name[: -len(FIFO)] if is_fifo(dead_name) else dead_name
        if name.endswith(settings.dead_letter_suffix):
            name = name[: -len(settings.dead_letter_suffix)]
        if name.startswith(settings.queue_prefix):
            name = name[len(settings.queue_prefix) :]
        return name + FIFO if is_fifo(dead_name) else name

    def requeue(self, dead_letter_id: str) -> bool:
        """Find the dead letter, send its body back to its queue, delete it; False if not found."""
        dead_name, _, message_id = dead_letter_id.partition("/")
        if not message_id:
            return False
        from botocore.exceptions import ClientError

        try:
            url = self._transport.call(
                f"looking up {dead_name!r}", self._transport.client.get_queue_url, QueueName=dead_name
            )["QueueUrl"]
        except ClientError:
            return False
        messages = self._peek(url, 10_000)
        found = [m for m in messages if m["MessageId"] == message_id]
        try:
            if not found:
                return False
            letter = found[0]
            queue = body.read(letter, body.QUEUE) or self._source_of(dead_name)
            target = self._transport.queues.url(queue)
            entry: dict[str, Any] = {"Id": "0", "MessageBody": letter["Body"]}
            if is_fifo(target):
                group = letter.get("Attributes", {}).get("MessageGroupId")
                entry["MessageGroupId"] = group or self._transport.settings.message_group_id
                entry["MessageDeduplicationId"] = f"requeued-{message_id}"
            self._transport.send_entries(target, queue, [entry])
            self._transport.call(
                f"deleting a requeued dead letter of {dead_name!r}",
                self._transport.client.delete_message,
                QueueUrl=url,
                ReceiptHandle=letter["ReceiptHandle"],
            )
            messages.remove(letter)
            return True
        finally:
            self._release(url, messages)
