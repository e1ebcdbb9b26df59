"""Message bodies in kombu's SQS format, and celeriac's own message attributes.

A body is kombu's JSON envelope, base64-encoded as kombu's SQS channel sends it by default
(``sqs_base64_encoding``), so Celery and celeriac read each other's messages. What celeriac
adds (a due time beyond SQS's 15-minute delay, a dead letter's reason) travels in SQS message
attributes, which kombu neither asks for nor sees.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from attrs import evolve

from celeriac.plugin import Envelope
from celeriac.plugin import MessageError
from celeriac.plugin import from_kombu
from celeriac.plugin import to_kombu

#: A delayed message's due time (epoch seconds), when SQS cannot delay it that long.
DUE = "celeriac.due"
#: On a dead letter: why, from which queue, when, after how many deliveries.
REASON = "celeriac.reason"
QUEUE = "celeriac.queue"
FAILED_AT = "celeriac.failed-at"
DELIVERIES = "celeriac.deliveries"
#: Every attribute celeriac reads back (SQS's wildcard for a prefix).
ATTRIBUTES = ["celeriac.*"]
#: Set anew on every send: a message sent again must not carry the old delivery's identity.
_FRESH_PROPERTIES = frozenset({"delivery_tag", "delivery_info", "body_encoding"})
#: SQS caps a message attribute's value at the message size; reasons are kept readable.
MAX_REASON = 4000


def encode(envelope: Envelope, queue: str, *, base64_body: bool) -> str:
    """kombu's envelope for the default exchange routed to ``queue``, as SQS's MessageBody."""
    properties = {k: v for k, v in envelope.properties.items() if k not in _FRESH_PROPERTIES}
    headers = {k: v for k, v in envelope.headers.items() if k != "redelivered"}
    data = to_kombu(evolve(envelope, headers=headers, properties=properties), exchange="", routing_key=queue)
    text = json.dumps(data)
    return base64.b64encode(text.encode()).decode("ascii") if base64_body else text


def decode(body: str) -> Envelope:
    """Read a body in either of kombu's forms (plain JSON or base64 of it).

    :raises MessageError: when it is neither, or not a kombu envelope.
    """
    text = body.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise MessageError(f"not a kombu message: neither JSON nor base64 ({exc})") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MessageError(f"not a kombu message: {exc}") from exc
    if not isinstance(data, dict):
        raise MessageError(f"not a kombu message: a JSON {type(data).__name__}, not an object")
    return from_kombu(data)


def number(value: float) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": repr(round(value, 3))}


def text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value or "-"}  # SQS refuses empty values


def read(message: dict[str, Any], name: str) -> str | None:
    """A message attribute's value as received, or None."""
    found = message.get("MessageAttributes", {}).get(name)
    return None if found is None else str(found.get("StringValue"))


def read_float(message: dict[str, Any], name: str) -> float | None:
    value = read(message, name)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
